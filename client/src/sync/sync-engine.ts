import type { Dexie } from "dexie";
import { deriveRelayToken } from "../crypto/keys.ts";
import { connectionProofs } from "../spaces/connection-proofs.ts";
import { readMembership } from "../spaces/membership-log.ts";
import { appealCommits } from "./appeal-commits.ts";
import { ShoalError as ShoalErrorClass, type ShoalError } from "../errors.ts";
import { live } from "../live/observable.ts";
import { onVectorWrite } from "./on-vector-write.ts";
import type { Subscription } from "../live/observable.ts";
import type { ValueStore } from "../live/value-store.ts";
import { decodeBase64Url, fromHex } from "../protocol/index.ts";
import type { SpaceRow } from "../replica/stored-rows.ts";
import type { SpaceId } from "../types.ts";
import type { PeerNetwork } from "../peer/peer-signaling.ts";
import { SpaceSealer } from "../sealing/sealer.ts";
import {
  SpaceSession,
  type Backoff,
  type SessionReplica,
  type SessionState,
  type SnapshotPolicy,
} from "./space-session.ts";
import {
  overallState,
  type FlaggedDevice,
  type MissingCommits,
  type StuckCommit,
  type SyncStatus,
  type TransportStatus,
} from "../status/sync-status.ts";
import { IntegrityError, integrityLogOf } from "../sealing/integrity.ts";
import type { Transport } from "../transports/transport.ts";

/**
 * Runs one `SpaceSession` per (space, transport) for every space this device belongs to, starting
 * sessions for spaces joined later, and keeps `db.status` current: connection states, commits waiting
 * for a relay acknowledgement, last sync. Local commits of any tab reach it through a live query over
 * the version vectors, so uploading needs no hook in the write path.
 */
export class SyncEngine {
  readonly #dexie: Dexie;
  readonly #replica: SessionReplica;
  readonly #transports: readonly Transport[];
  readonly #status: ValueStore<SyncStatus>;
  /** Stops the wake-ups on vector writes (`onVectorWrite`). */
  #offVectors: (() => void) | undefined;
  readonly #sessions = new Map<string, { session: SpaceSession; status: TransportStatus }>();
  readonly #synced = new Set<string>();
  /** Per session key: what it knows to be missing or stuck (a space with any is never `synced`). */
  readonly #blocked = new Map<
    string,
    { missing: readonly MissingCommits[]; stuck: readonly StuckCommit[] }
  >();
  readonly #flagged = new Map<string, FlaggedDevice>();
  #unlistenIntegrity: (() => void) | null = null;
  readonly #subs: Subscription[] = [];
  #lastSyncedAt: number | undefined;
  #lastError: SyncStatus["lastError"];
  #pending = 0;
  #stopped = false;

  readonly #backoff: Backoff | undefined;
  readonly #snapshots: Partial<SnapshotPolicy> | undefined;
  /** Direct links to other devices (WebRTC), signalled through the relay connections; absent when off. */
  readonly #peers: PeerNetwork | undefined;
  /** Status of each peer link, by the peer network's key. */
  readonly #peerStatus = new Map<string, TransportStatus>();

  constructor(
    dexie: Dexie,
    replica: SessionReplica,
    transports: readonly Transport[],
    status: ValueStore<SyncStatus>,
    options: { backoff?: Backoff; snapshots?: Partial<SnapshotPolicy>; peers?: PeerNetwork } = {},
  ) {
    this.#peers = options.peers;
    this.#backoff = options.backoff;
    this.#snapshots = options.snapshots;
    this.#dexie = dexie;
    this.#replica = replica;
    // With peers on, the relay connections also carry their signalling (taken out before the sessions).
    this.#transports = options.peers ? transports.map((t) => options.peers!.tap(t)) : transports;
    this.#status = status;
  }

  /** Starts syncing every space, now and as spaces are joined. */
  start(): void {
    const integrity = integrityLogOf(this.#dexie);
    for (const e of integrity.store.get().entries) this.#flag(e);
    this.#unlistenIntegrity = integrity.listen((e) => {
      this.#flag(e);
      this.#error(new IntegrityError(e));
    });
    this.#peers?.start({
      status: (key, status) => {
        if (status) this.#peerStatus.set(key, status);
        else this.#peerStatus.delete(key);
        this.#publish();
      },
      error: (e) => this.#error(e),
      synced: (space) => {
        this.#synced.add(space);
        this.#lastSyncedAt = Date.now();
        this.#publish();
      },
    });
    this.#subs.push(
      live(() => this.#dexie.table<SpaceRow>("_spaces").toArray()).subscribe({
        next: (rows) => void this.#ensureSessions(rows).catch((e) => this.#error(e as ShoalError)),
        error: (e) => this.#error(e as ShoalError),
      }),
    );
    // Any write to a vector, here or in another tab (a space may have thousands of devices, and this
    // runs after every applied chunk and every local commit): reported, not read.
    this.#offVectors = onVectorWrite(this.#dexie, () => {
      for (const { session } of this.#sessions.values()) session.poke();
      this.#peers?.poke();
      this.#refreshPendingSoon();
    });
    this.#onlineChange = () => {
      // Coming back online: try at once instead of waiting for the backoff timer.
      if (globalThis.navigator?.onLine)
        for (const { session } of this.#sessions.values()) session.reconnect();
      this.#publish();
    };
    globalThis.addEventListener?.("online", this.#onlineChange);
    globalThis.addEventListener?.("offline", this.#onlineChange);
  }

  #onlineChange: (() => void) | null = null;

  /** Stops every session. */
  stop(): void {
    this.#stopped = true;
    for (const s of this.#subs.splice(0)) s.unsubscribe();
    this.#offVectors?.();
    this.#unlistenIntegrity?.();
    this.#unlistenIntegrity = null;
    for (const { session } of this.#sessions.values()) session.stop();
    this.#peers?.stop();
    this.#peerStatus.clear();
    this.#sessions.clear();
    if (this.#onlineChange) {
      globalThis.removeEventListener?.("online", this.#onlineChange);
      globalThis.removeEventListener?.("offline", this.#onlineChange);
    }
    this.#publish();
  }

  /** Publishes a snapshot of a space through each of its sessions; true if any relay stored it. */
  async publishSnapshot(space: SpaceId): Promise<boolean> {
    const sessions = [...this.#sessions.values()].filter((s) => s.status.space === space);
    if (sessions.length === 0) throw new ShoalErrorClass("NotConnected", `Not syncing space ${space}.`);
    const results = await Promise.all(sessions.map((s) => s.session.publishSnapshot()));
    return results.some(Boolean);
  }

  /** Drops every connection; each reconnects by itself (tests, network changes). */
  reconnectAll(): void {
    for (const { session } of this.#sessions.values()) session.reconnect();
  }

  async #ensureSessions(rows: SpaceRow[]): Promise<void> {
    this.#held = new Set(rows.map((r) => r.id));
    this.#dropLeftSpaces(this.#held);
    for (const row of rows) {
      // Before its relay sessions start, so their first welcome already finds the space's signalling.
      if (!this.#stopped) this.#peers?.addSpace(row);
      for (const [i, transport] of this.#transports.entries()) {
        const key = `${i}|${row.id}`;
        if (this.#sessions.has(key) || this.#stopped) continue;
        const token = decodeBase64Url(await deriveRelayToken(row.key, fromHex(row.id, 16)));
        // Left while the token was derived (a later call has the newer list of spaces).
        if (this.#sessions.has(key) || this.#stopped || !this.#held.has(row.id)) continue;
        const status: TransportStatus = {
          kind: transport.kind,
          label: transport.label,
          space: row.id,
          state: "connecting",
        };
        const sealer = new SpaceSealer(this.#dexie, row.id, row.key);
        const session = new SpaceSession({
          space: row.id,
          replica: this.#replica,
          sealer,
          transport,
          token,
          ...(row.claim && { claim: row.claim }),
          // The invitation secret is read afresh: it is dropped once this device's redemption counts.
          proofs: async () =>
            connectionProofs(
              this.#replica.identity,
              (await this.#dexie.table<SpaceRow>("_spaces").get(row.id)) ?? row,
            ),
          appealCommits: () => appealCommits(this.#dexie, sealer, row.id, this.#replica.device),
          residency: async () => (await readMembership(this.#dexie, row.id))?.residency,
          spaceKey: row.key,
          backoff: this.#backoff,
          snapshots: this.#snapshots,
          hooks: {
            state: (state: SessionState, detail?: string) => {
              if (state !== "connected") this.#synced.delete(row.id);
              this.#setStatus(key, { state, detail });
            },
            error: (e) => this.#error(e),
            synced: () => {
              this.#synced.add(row.id);
              this.#lastSyncedAt = Date.now();
              this.#setStatus(key, { lastSyncedAt: this.#lastSyncedAt });
            },
            acked: () => this.#refreshPendingSoon(),
            snapshotStored: () => this.#setStatus(key, { lastSnapshotAt: Date.now() }),
            blocked: (missing, stuck) => {
              if (missing.length === 0 && stuck.length === 0) this.#blocked.delete(key);
              else this.#blocked.set(key, { missing, stuck });
              this.#publish();
            },
          },
        });
        this.#sessions.set(key, { session, status });
        session.start();
      }
    }
    this.#publish();
  }

  /** The spaces of the latest `_spaces` read. */
  #held = new Set<string>();

  /**
   * Stops the sessions and peer links of spaces this device left (here or in another tab), then sweeps
   * what a commit being applied at that moment may have stored of them after the leave.
   */
  #dropLeftSpaces(held: ReadonlySet<string>): void {
    const left = new Set<SpaceId>();
    for (const [key, { session, status }] of [...this.#sessions]) {
      if (held.has(status.space)) continue;
      session.stop();
      this.#sessions.delete(key);
      this.#blocked.delete(key);
      this.#synced.delete(status.space);
      left.add(status.space as SpaceId);
    }
    for (const space of left) {
      this.#peers?.removeSpace(space);
      this.#replica.sweepLeftSpace?.(space).catch((e) => this.#error(e as ShoalError));
    }
  }

  #flag(e: {
    space: FlaggedDevice["space"];
    device: FlaggedDevice["device"];
    kind: FlaggedDevice["kind"];
    seq: number;
  }): void {
    const id = `${e.space}|${e.device}|${e.kind}`;
    if (!this.#flagged.has(id))
      this.#flagged.set(id, { space: e.space, device: e.device, kind: e.kind, seq: e.seq });
    this.#publish();
  }

  #setStatus(key: string, patch: Partial<TransportStatus>): void {
    const s = this.#sessions.get(key);
    if (!s) return;
    s.status = { ...s.status, ...patch };
    this.#publish();
  }

  #error(e: ShoalError): void {
    if (this.#stopped) return;
    // Every code here is in the README's error table (a test checks): anything without one is a SyncError.
    const reason = (e as { reason?: unknown } | undefined)?.reason;
    this.#lastError = {
      code: e?.code ?? "SyncError",
      message: e?.message ?? String(e),
      at: Date.now(),
      // The finer stable reason some errors carry (`AccessDenied.reason`: `token` or `claim`).
      ...(typeof reason === "string" && { reason }),
    };
    this.#publish();
  }

  #refreshPendingSoon(): void {
    if (this.#stopped) return;
    this.#refreshPending().catch((e) => {
      // After close the database refuses reads: nothing to report then.
      if (!this.#stopped) this.#error(e as ShoalError);
    });
  }

  async #refreshPending(): Promise<void> {
    // Only this device's own entries: a space of thousands of devices must not cost a read of them
    // all on every change of a vector.
    const me = this.#replica.device;
    const spaces = (await this.#dexie.table("_spaces").toCollection().primaryKeys()) as string[];
    const keys = spaces.map((space) => [space, me]);
    const [held, acked] = await Promise.all([
      this.#dexie.table<{ seq: number }>("_vectors").bulkGet(keys),
      this.#dexie.table<{ seq: number }>("_acks").bulkGet(keys),
    ]);
    let pending = 0;
    for (let i = 0; i < keys.length; i++) pending += Math.max(0, (held[i]?.seq ?? 0) - (acked[i]?.seq ?? 0));
    this.#pending = pending;
    this.#publish();
  }

  #publish(): void {
    const transports = [...[...this.#sessions.values()].map((s) => s.status), ...this.#peerStatus.values()];
    const blocked = [...this.#blocked.values()];
    const missing = blocked.flatMap((b) => b.missing);
    const stuck = blocked.flatMap((b) => b.stuck);
    // A space with a known commit missing or an own commit stuck is not synced, whatever its pulls say.
    const synced = new Set(this.#synced);
    for (const b of [...missing, ...stuck]) synced.delete(b.space);
    this.#status.set({
      state: this.#stopped ? "local" : overallState(transports, synced),
      online: globalThis.navigator?.onLine ?? true,
      transports,
      pendingCommits: this.#pending,
      lastSyncedAt: this.#lastSyncedAt,
      lastError: this.#lastError,
      ...(missing.length > 0 ? { missing } : {}),
      ...(stuck.length > 0 ? { stuck } : {}),
      ...(this.#flagged.size > 0 ? { flagged: [...this.#flagged.values()] } : {}),
    });
  }
}
