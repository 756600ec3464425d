import { ProtocolError, ResidencyRefused, ShoalError, ValidationError } from "../errors.ts";
import { REGION_SUBPROTOCOL_PREFIX, RESIDENCY_REFUSAL } from "../protocol/subprotocol.ts";
import { MEMBERSHIP_REFUSALS } from "../protocol/device-auth.ts";
import {
  DEFAULT_LIMITS,
  MAX_COMMITS_PER_BATCH,
  MAX_VECTOR_ENTRIES,
  PROTOCOL_VERSION,
  MIN_PROTOCOL_VERSION,
  decodeMessage,
  decodeSealedCommit,
  encodeMessage,
  fromHex,
  toHex,
  vectorPages,
  type Message,
  type VectorEntry,
} from "../protocol/index.ts";
import type { DeviceId, SpaceId } from "../types.ts";
import {
  ChainMismatch,
  KeyUnavailable,
  type Clash,
  type OpenedCommit,
  type SpaceSealer,
} from "../sealing/sealer.ts";
import { byMembership } from "../sealing/by-membership.ts";
import { asStorageError } from "../replica/quota.ts";
import { OPEN_PER_SLICE, TaskBudget } from "../replica/task-budget.ts";
import { SnapshotExchange, vectorTotal, type SnapshotPolicy } from "../snapshots/snapshot-exchange.ts";
import { auditSnapshot } from "../snapshots/snapshot-audit.ts";
import { keepInParts } from "../snapshots/keep-in-parts.ts";
import { publishableSnapshot } from "../snapshots/publishable-snapshot.ts";
import { publishCompacted } from "./compacted-publish.ts";
import { believableEntries } from "./believable-entries.ts";
import { sourceOfTransport, type IntegritySource } from "../sealing/integrity.ts";
import { DownloadRepair } from "./integrity-downloads.ts";
import { uploadFrames } from "./upload-frames.ts";
import { sha256 } from "../crypto/seal.ts";

export type { SnapshotPolicy } from "../snapshots/snapshot-exchange.ts";
export type { Backoff, SessionHooks, SessionReplica, SessionState } from "./session-contract.ts";
import type { Backoff, SessionHooks, SessionReplica } from "./session-contract.ts";
import { accessDenied } from "./access-denied.ts";
import { lastSeqs, ownSeq } from "./sealed-headers.ts";
import type { Transport, TransportConnection, TransportHandlers } from "../transports/transport.ts";

const DEFAULT_BACKOFF: Backoff = { baseMs: 250, maxMs: 30_000 };

/** Bytes of commits sent and not yet acknowledged, at most (the upload window). */
const UPLOAD_WINDOW = 8 * 1024 * 1024;
// A socket says nothing when its send buffer drains, so a full one is looked at again after this long.
const DRAIN_RETRY_MS = 25;
/**
 * Most entries of a (paged) `welcome` kept for devices this replica does not hold: a relay cannot make
 * a session hold more, whatever number of pages it sends.
 */
const MAX_FOREIGN_WELCOME_ENTRIES = 100_000;
/** Bytes the relay may put in one pull reply. */
const PULL_BYTES = 960 * 1024;
/**
 * Upload frames: room left in a frame for everything but the commits, and at most 64 commits (the
 * protocol allows 1,024). Large commits fill a frame by bytes long before; small ones leave in frames
 * of about 64 KB, each acknowledged on its own, so a cut or a refusal resends little. (256 were tried:
 * a 1,000-commit upload of 1 KB commits became four frames, and relay-sigkill.test.ts's kill points,
 * spread over the acks, ran out of frames after three kills.)
 */
const LIMITS = {
  frameBytes: DEFAULT_LIMITS.maxFrameBytes - 4 * MAX_COMMITS_PER_BATCH - 64,
  frameCommits: Math.min(64, MAX_COMMITS_PER_BATCH),
};

/**
 * Syncs one space with the relay over one transport connection at a time, following PROTOCOL.md:
 * `hello` -> `welcome` (the relay's vector), then it uploads what the relay lacks (its own commits and
 * any other device's it holds, so a wiped relay is refilled) within an upload window that acks reopen,
 * and pulls what it lacks until the relay says there is no more. Frames are handled one at a time in
 * arrival order. A dropped connection resumes from the vectors on the next `welcome`.
 *
 * (One state machine over the protocol, whose handlers share its private state, so one file past 400
 * lines; the parts that stand on their own live in their own files: its contract with the engine
 * (session-contract.ts), snapshots, sealing, download repair, refusal texts (access-denied.ts).)
 */
export class SpaceSession {
  readonly space: SpaceId;
  readonly #spaceBytes: Uint8Array;
  readonly #replica: SessionReplica;
  readonly #sealer: SpaceSealer;
  readonly #transport: Transport;
  readonly #token: Uint8Array;
  readonly #claim: Uint8Array | undefined;
  readonly #proofs: (() => Promise<string[]>) | undefined;
  /** This device's own commits to appeal a removal with, or `undefined` when its own log removed it. */
  readonly #appealCommits: (() => Promise<Uint8Array[] | undefined>) | undefined;
  /** The current attempt follows an appeal the relay admitted. */
  #appealAdmitted = false;
  /** Devices whose commits the relay's membership log refused on this connection: not sent again. */
  readonly #membershipRefused = new Set<string>();
  readonly #hooks: SessionHooks;
  readonly #backoff: Backoff;
  readonly #snapshots: SnapshotExchange;
  /** What this session's commits count as in the integrity report. */
  readonly #source: IntegritySource;
  #conn: TransportConnection | null = null;
  #welcomed = false;
  #stopped = false;
  #attempt = 0;
  /** The relay refused the last attempt (wrong key): retries show "refused" until one is accepted. */
  #accessRefused = false;
  /** The space's region, read for each connection (`createSpace({ residency })`); absent: not pinned. */
  readonly #residency: (() => Promise<string | undefined>) | undefined;
  /** This session closed the last connection itself: the relay did not confirm the space's region. */
  #residencyRefused = false;
  /** The region the current attempt's space is pinned to, as read for it. */
  #pinned: string | undefined;
  #timer: ReturnType<typeof setTimeout> | null = null;
  #drainTimer: ReturnType<typeof setTimeout> | null = null;
  /** Per device: highest sequence the relay holds or has been sent on this connection. */
  readonly #sent = new Map<string, number>();
  /** Per device: highest sequence the relay acknowledged. */
  readonly #acked = new Map<string, number>();
  /** Bytes and last sequence of each upload frame not yet fully acknowledged. */
  #inflight: { device: string; seq: number; bytes: number }[] = [];
  #pulling = false;
  #pokeQueued = false;
  /** Commits that did not open (fetched again, or given up on as bad at their source), own ones stuck. */
  readonly #repair: DownloadRepair;
  #refetchTimer: ReturnType<typeof setTimeout> | null = null;
  /** Pages of the current `welcome` were read, and one of them named at least one device. */
  #welcomePaging = false;
  #relayHoldsAny = false;
  /** This connection asked for this device's last commit at the relay again (to see it is intact). */
  #ownHeadAsked = false;
  /** An own commit came back damaged (its replacement was asked): pull once more before saying synced. */
  #ownRecheck = false;
  /** Own commits whose damaged copy at the relay this connection already asked to replace. */
  readonly #replaceAsked = new Set<number>();
  /** Asks again to replace an own commit the relay still refuses, after a backoff delay. */
  #replaceTimer: ReturnType<typeof setTimeout> | null = null;
  /** Replacements asked again since the relay last acknowledged a new commit of this device. */
  #replaceAttempt = 0;
  /**
   * After a snapshot import: the heads it covers, checked against the relay by fetching each of them
   * again (one commit per device) with the first pull; and who published it, for the report.
   */
  #snapshotCheck: { heads: Record<string, number>; publisher: DeviceId; sent: boolean } | null = null;
  /** The relay's snapshot contradicted its commits: this session replays the log instead, from now on. */
  #snapshotRefused = false;
  #work: Promise<void> = Promise.resolve();
  /** Bumped on every connect, so work queued for an old connection does not act on a new one. */
  #epoch = 0;

  constructor(opts: {
    space: SpaceId;
    replica: SessionReplica;
    sealer: SpaceSealer;
    transport: Transport;
    token: Uint8Array;
    /** The space's claim (`SpaceRow.claim`), offered on every connection so a relay can register it. */
    claim?: Uint8Array;
    /** Signs this device's proofs for each new connection (`connectionProofs`). */
    proofs?: () => Promise<string[]>;
    /** What to appeal a refusal as removed with (`appealCommits`); absent: never appeal. */
    appealCommits?: () => Promise<Uint8Array[] | undefined>;
    /**
     * The region the space is pinned to, read afresh for each connection: a relay transport must
     * confirm it (its subprotocol answer) before anything is sent, or the session closes at once.
     */
    residency?: () => Promise<string | undefined>;
    hooks: SessionHooks;
    backoff?: Backoff;
    snapshots?: Partial<SnapshotPolicy>;
    spaceKey: Uint8Array;
  }) {
    this.#backoff = opts.backoff ?? DEFAULT_BACKOFF;
    this.#snapshots = new SnapshotExchange({
      space: opts.space,
      spaceKey: opts.spaceKey,
      policy: opts.snapshots,
      send: (m) => this.#send(m),
      sealer: opts.sealer,
      device: opts.replica.device,
      ...(opts.replica.compaction && {
        openCompacted: (v, blob) => opts.replica.compaction!.open(opts.space, v, blob),
      }),
      ...(opts.replica.snapshotCoverage && { coverage: opts.replica.snapshotCoverage(opts.space) }),
    });
    this.space = opts.space;
    this.#spaceBytes = fromHex(opts.space, 16);
    this.#replica = opts.replica;
    this.#sealer = opts.sealer;
    this.#transport = opts.transport;
    this.#source = sourceOfTransport(opts.transport.kind);
    this.#repair = new DownloadRepair({
      space: opts.space,
      source: this.#source,
      integrity: opts.sealer.integrity,
      report: (missing, stuck) => opts.hooks.blocked?.(missing, stuck),
      error: (e) => opts.hooks.error(e),
    });
    this.#token = opts.token;
    this.#claim = opts.claim;
    this.#proofs = opts.proofs;
    this.#appealCommits = opts.appealCommits;
    this.#residency = opts.residency;
    this.#hooks = opts.hooks;
  }

  /** Connects, and keeps reconnecting with backoff until `stop`. */
  start(): void {
    this.#stopped = false;
    this.#connect();
  }

  /** Closes the connection and stops reconnecting. */
  stop(): void {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    if (this.#drainTimer) clearTimeout(this.#drainTimer);
    this.#drainTimer = null;
    if (this.#refetchTimer) clearTimeout(this.#refetchTimer);
    this.#refetchTimer = null;
    this.#clearReplaceTimer();
    this.#conn?.close("stopped");
    this.#conn = null;
    this.#hooks.state("stopped");
  }

  /**
   * Drops the current connection now (it reconnects by itself), or, while waiting out the backoff,
   * tries at once: used by tests, on network change and by `db.reconnect()`.
   */
  reconnect(): void {
    if (this.#conn) {
      this.#conn.close("reconnect");
    } else if (this.#timer && !this.#stopped) {
      clearTimeout(this.#timer);
      this.#connect();
    }
  }

  /** Local commits may exist that the relay lacks: upload them (and recount what is missing). */
  poke(): void {
    // Once in the queue is enough (each reads the whole vector): a chunk of a large batch pokes each time.
    if (this.#pokeQueued) return;
    this.#pokeQueued = true;
    this.#enqueue(async () => {
      this.#pokeQueued = false;
      // A commit this session could not get may have come another way (a peer, a bundle).
      if (this.#repair.pending)
        this.#repair.settle((await this.#replica.vector([this.space]))[this.space] ?? {});
      await this.#upload();
    });
  }

  #connect(): void {
    if (this.#stopped) return;
    this.#timer = null;
    this.#epoch++;
    this.#welcomed = false;
    this.#welcomePaging = false;
    this.#relayHoldsAny = false;
    this.#replaceAsked.clear();
    this.#membershipRefused.clear();
    this.#clearReplaceTimer();
    // A refetch scheduled on the last connection would fire for it and do nothing, while its timer
    // kept this connection from scheduling its own: a session then never said synced again.
    if (this.#refetchTimer) clearTimeout(this.#refetchTimer);
    this.#refetchTimer = null;
    this.#ownHeadAsked = false;
    this.#ownRecheck = false;
    this.#pulling = false;
    this.#inflight = [];
    // A refusal does not go away by waiting: say so through the retries rather than "connecting".
    // Set again by this attempt if the relay still is not of the space's region.
    const residencyRefused = this.#residencyRefused;
    this.#residencyRefused = false;
    this.#hooks.state(this.#accessRefused || residencyRefused ? "refused" : "connecting");
    let conn: TransportConnection | null = null;
    let closed = false;
    let pinned: string | undefined;
    const handlers: TransportHandlers = {
      onOpen: (info) => {
        if (closed || conn !== this.#conn) return;
        // A pinned space goes to a relay only when it answered that it is of the space's region
        // (PROTOCOL.md 1, "Residency"): otherwise close before the first frame, `hello` included.
        if (pinned !== undefined && this.#transport.kind === "relay") {
          if (info?.protocol !== REGION_SUBPROTOCOL_PREFIX + pinned) {
            this.#residencyRefused = true;
            this.#hooks.error(new ResidencyRefused(pinned, this.#transport.label));
            conn?.close("residency");
            return;
          }
        }
        this.#residencyRefused = false;
        this.#send({
          type: "hello",
          minVersion: MIN_PROTOCOL_VERSION,
          maxVersion: PROTOCOL_VERSION,
          device: fromHex(this.#replica.device, 16),
        });
      },
      onMessage: (frame) => {
        if (closed || conn !== this.#conn) return;
        let m: Message;
        try {
          m = decodeMessage(frame);
        } catch (e) {
          this.#hooks.error(e as ProtocolError);
          conn?.close("protocol error");
          return;
        }
        const epoch = this.#epoch;
        this.#enqueue(() => (epoch === this.#epoch ? this.#handle(m, epoch) : Promise.resolve()));
      },
      onClose: (reason, code) => {
        if (closed) return;
        closed = true;
        if (conn === this.#conn) this.#conn = null;
        this.#snapshots.reset();
        if (code === 4403 && reason.includes(MEMBERSHIP_REFUSALS.removed) && !this.#stopped)
          return void this.#appealThen(reason, code);
        this.#closed(reason, code);
      },
    };
    const open = (proofs: readonly string[]) => {
      const items = pinned === undefined ? proofs : [...proofs, REGION_SUBPROTOCOL_PREFIX + pinned];
      conn = this.#transport.connect(this.space, this.#token, handlers, this.#claim, items);
      this.#conn = conn;
    };
    if (!this.#proofs && !this.#residency) return open([]);
    // Signed afresh for each connection: a device proof is only good for minutes.
    const epoch = this.#epoch;
    const residency = this.#residency;
    // A pin that cannot be read is no reason to send the space anywhere: the attempt waits.
    void (residency ? residency() : Promise.resolve(undefined)).then(
      (region) => {
        pinned = region;
        this.#pinned = region;
        if (!this.#proofs) return void (epoch === this.#epoch && !this.#stopped && open([]));
        void this.#proofs().then(
          (proofs) => {
            if (epoch === this.#epoch && !this.#stopped) open(proofs);
          },
          () => {
            if (epoch === this.#epoch && !this.#stopped) open([]);
          },
        );
      },
      () => {
        if (epoch === this.#epoch && !this.#stopped)
          this.#closed("The space's region could not be read.", undefined);
      },
    );
  }

  /** After a connection closed or was refused: reports it and schedules the next attempt. */
  #closed(reason: string, code: number | undefined): void {
    if (this.#residencyRefused) {
      // Closed here, before sending anything: say why through the retries, which ask again each time.
      const why = "refused: the relay is not in the space's region";
      this.#hooks.state(this.#stopped ? "stopped" : "refused", why);
      if (!this.#stopped) this.#scheduleReconnect(true);
      return;
    }
    if (code === 4403 && reason.includes(RESIDENCY_REFUSAL) && this.#pinned !== undefined) {
      // A relay of another region (or none) refused the pinned space at the upgrade.
      this.#residencyRefused = true;
      this.#hooks.error(new ResidencyRefused(this.#pinned, this.#transport.label));
      return this.#closed(reason, undefined);
    }
    const refused = code === 4401 || code === 4403;
    this.#accessRefused = refused;
    if (refused) this.#hooks.error(accessDenied(reason, this.#claim !== undefined));
    this.#hooks.state(this.#stopped ? "stopped" : refused ? "refused" : "offline", reason);
    if (!this.#stopped) this.#scheduleReconnect(refused);
  }

  /**
   * The relay refused this device as removed. When the device's own log says otherwise (its person
   * outranks the admin who removed it, by an operation the relay has not heard: two admins who
   * removed each other offline), it appeals with its own commits the relay lacks (PROTOCOL.md 1,
   * "Appeal"), once per attempt, and connects again at once if the relay lets it in. Otherwise, or
   * if the appeal is refused, the refusal is reported as it would have been.
   */
  async #appealThen(reason: string, code: number): Promise<void> {
    const epoch = this.#epoch;
    // The attempt right after an admitted appeal does not appeal again: a relay that lets a device in
    // at the appeal and refuses it at the door would otherwise make this a loop.
    const appealed = this.#appealAdmitted;
    this.#appealAdmitted = false;
    let admitted = false;
    if (!appealed && this.#transport.appeal && this.#appealCommits) {
      // What the relay sent before closing is applied first: a removal it just stored and pushed (then
      // closed this connection) is this device's own log's verdict too, and there is nothing to appeal.
      await this.#work;
      try {
        const commits = await this.#appealCommits();
        const proofs = commits && this.#proofs ? await this.#proofs() : [];
        if (commits) admitted = await this.#transport.appeal(this.space, this.#token, proofs, commits);
      } catch {
        // Storage or signing failed: the refusal stands, and the next attempt may appeal again.
      }
    }
    if (epoch !== this.#epoch || this.#stopped) return;
    if (!admitted) return this.#closed(reason, code);
    this.#appealAdmitted = true;
    this.#connect();
  }

  #scheduleReconnect(slow: boolean): void {
    const { baseMs, maxMs } = this.#backoff;
    const base = Math.min(maxMs, baseMs * 2 ** Math.min(this.#attempt, 16));
    this.#attempt++;
    const delay = (slow ? maxMs : base) * (0.5 + Math.random() / 2);
    this.#timer = setTimeout(() => this.#connect(), delay);
  }

  #send(m: Message): void {
    this.#conn?.send(encodeMessage(m));
  }

  #enqueue(job: () => Promise<void>): void {
    this.#work = this.#work.then(job).catch((err) => {
      if (this.#stopped) return;
      const e = asStorageError(err);
      this.#hooks.error(
        e instanceof ShoalError
          ? e
          : new ShoalError("SyncError", String((e as Error)?.message ?? e), { cause: e }),
      );
    });
  }

  /** Handles one frame of the connection of `epoch`; a step after an await checks it is still current. */
  async #handle(m: Message, epoch: number): Promise<void> {
    switch (m.type) {
      case "welcome": {
        if (this.#welcomed) return; // a welcome after the handshake is the other side's confusion
        if (!this.#welcomePaging) {
          this.#welcomePaging = true;
          this.#attempt = 0;
          this.#sent.clear();
          // Given-up commits are asked for again on each connection (the relay may hold a replacement);
          // the same bad bytes again are recognised at once by their hash.
          this.#repair.connected();
        }
        // The vector may come in pages (PROTOCOL.md section 2): each is used as it comes, and only what
        // concerns devices this replica holds is kept, so a relay cannot make it hold an unbounded list.
        const mine = (await this.#replica.vector([this.space]))[this.space] ?? {};
        this.#relayHoldsAny ||= m.vector.length > 0;
        const entries: { device: DeviceId; seq: number }[] = [];
        const believable = await this.#believable(m.vector, mine);
        // Its connection closed while this was read, and the next attempt began: this welcome must not
        // stand for the next connection, whose own welcome would be ignored and which would never pull
        // (soak seeds 96437, 93126: `connected`, never synced).
        if (epoch !== this.#epoch) return;
        for (const e of believable) {
          const held = mine[e.device] !== undefined;
          // Devices held here bound themselves; others are kept (so what arrives later from a peer or
          // a tab is not uploaded again) only up to a cap: beyond it they cost duplicates, not memory.
          if (!held && this.#sent.size >= MAX_FOREIGN_WELCOME_ENTRIES) continue;
          this.#sent.set(e.device, e.seq);
          this.#noteAck(e.device, e.seq);
          if (held) entries.push(e);
        }
        if (m.more) {
          if (entries.length > 0) await this.#recordAcks(entries);
          return;
        }
        this.#welcomed = true;
        this.#accessRefused = false;
        this.#appealAdmitted = false;
        this.#hooks.state("connected");
        await this.#recordAcks(entries);
        if (
          this.#snapshots.policy.bootstrap &&
          !this.#snapshotRefused &&
          (Object.keys(mine).length === 0 || (await this.#replica.compaction?.mayBootstrap(this.space))) &&
          this.#relayHoldsAny
        ) {
          // A fresh device: the relay's snapshot first, then only the commits after it.
          if (epoch === this.#epoch) this.#snapshots.request();
          return;
        }
        // Nor a pull sent on the next connection before its own hello.
        if (epoch !== this.#epoch) return;
        await this.#pull();
        await this.#upload();
        return;
      }
      case "snapshot": {
        const got = await this.#snapshots.receive(m.vector, m.part, m.parts, m.bytes, (e) =>
          this.#hooks.error(e),
        );
        if (got === null) return;
        // A compacted snapshot (attested by an admin's compact operation) carries no commit to check.
        if (got !== "none" && got.compacted && (await this.#replica.compaction!.import(got.content)))
          this.#snapshots.noteCovered(vectorTotal(got.content.vector));
        if (got !== "none" && got.compacted) return void (await this.#pull(), await this.#upload());
        // Its records against its own (verified) log BEFORE importing: audited after, a forged record
        // was shown meanwhile, and a local write on top of it made the snapshot impossible to discard
        // (this device's commits then depend on a change no other device has: diverged for good).
        const problem =
          got === "none"
            ? null
            : await auditSnapshot(got.content).catch((e: unknown) => `its records cannot be read (${e})`);
        if (got !== "none" && problem) {
          this.#snapshotCheck = { heads: { ...got.content.vector }, publisher: got.publisher, sent: false };
          await this.#snapshotContradicted(`does not match its own commits (${problem})`);
        }
        // A snapshot that cannot be imported is refused whole (reported): the commits are pulled instead.
        else if (
          got !== "none" &&
          (await this.#replica.importSnapshot(got.content).catch((e: unknown) => {
            this.#hooks.error(e instanceof ShoalError ? e : new ShoalError("SyncError", String(e)));
            return false;
          }))
        ) {
          // Every sealed commit of the snapshot is kept: only its author can seal a commit again (its
          // signature), and this device forwards them byte for byte (to a wiped relay, a peer, a
          // file, its own snapshot). The heads are what the relay's commits are compared with, and
          // its next commits chain to them.
          await keepInParts(this.#sealer, got.opened, "snapshot");
          this.#snapshots.noteCovered(vectorTotal(got.content.vector));
          // The snapshot's log is chained to its heads; whether those are the relay's heads is seen by
          // fetching them again: a different commit at a head is equivocation against the snapshot.
          this.#snapshotCheck = { heads: { ...got.content.vector }, publisher: got.publisher, sent: false };
        }
        await this.#pull();
        await this.#upload();
        return;
      }
      case "snapshot-stored":
        this.#snapshots.stored(m.vector);
        this.#hooks.snapshotStored?.();
        return;
      case "commits":
        if (m.reply && m.more) {
          // Ask for the next batch before applying this one, so the relay reads while this replica
          // writes: the relay's reply is contiguous per device from our vector, so its last sequence
          // per device is where the next pull starts.
          this.#pulling = false;
          await this.#pull(lastSeqs(m.commits));
        }
        try {
          await this.#receive(m.commits);
        } catch (err) {
          const e = asStorageError(err);
          // Storage refused the batch (quota, I/O): nothing of it was kept. Report it and drop the
          // connection, so the session retries later with backoff from the vectors, as after any cut.
          this.#hooks.error(
            e instanceof ShoalError
              ? e
              : new ShoalError("SyncError", String((e as Error)?.message ?? e), { cause: e }),
          );
          if (epoch === this.#epoch) this.#conn?.close("storage error");
          return;
        }
        // A reply of a connection that closed meanwhile says nothing about the next one: not synced.
        if (epoch !== this.#epoch) return;
        if (m.reply && !m.more) {
          this.#pulling = false;
          const recheck = this.#ownRecheck;
          this.#ownRecheck = false;
          if (this.#repair.pullFinished() === "refetch" || recheck) {
            // A damaged download: fetch it again later rather than claim to hold everything.
            this.#scheduleRefetch();
            return;
          }
          // No snapshot from here: a writer publishes once the relay acknowledged its own upload (so
          // readers, who only pull, never upload snapshots of what others wrote).
          this.#hooks.synced();
        } else if (!m.reply && this.#repair.refetchWanted) {
          // A damaged live push: pull it again later (the reply of that pull settles the flag).
          this.#scheduleRefetch();
        }
        return;
      case "ack": {
        const mine = (await this.#replica.vector([this.space]))[this.space] ?? {};
        const entries = await this.#believable(m.entries, mine);
        for (const e of entries) this.#noteAck(e.device, e.seq);
        this.#inflight = this.#inflight.filter((f) => (this.#acked.get(f.device) ?? 0) < f.seq);
        await this.#recordAcks(entries);
        await this.#upload();
        if (this.#inflight.length === 0) await this.#maybePublish();
        return;
      }
      case "error": {
        // A newer snapshot is already there, or ours names commits the relay lacks: keep going.
        if (this.#snapshots.refused(m)) return;
        const err = new ShoalError(`Relay:${m.code}`, `The relay refused: ${m.message}`);
        this.#hooks.error(err);
        if (m.code === "residency") {
          // The relay read a region pin this device did not apply (its log had not said so yet): stop
          // sending the space there; the next attempt reads the pin again.
          this.#residencyRefused = this.#pinned !== undefined;
          this.#conn?.close("residency");
          return;
        }
        if (
          m.device &&
          (m.code === "conflict" || m.code === "chain") &&
          toHex(m.device) === this.#replica.device
        )
          this.#repair.stuck(this.#replica.device, (this.#acked.get(this.#replica.device) ?? 0) + 1, m.code);
        if (m.device && (m.code === "membership" || m.code === "compaction")) {
          // The relay's membership log refuses this device's commit (removed, a reader, not a member
          // there yet): sending it again would only be refused again, until the log changes (a
          // membership commit arrives here, or a new connection).
          const d = toHex(m.device);
          this.#membershipRefused.add(d);
          this.#sent.set(d, this.#acked.get(d) ?? 0);
          this.#inflight = this.#inflight.filter((f) => f.device !== d);
          return;
        }
        const resend = m.code === "gap" || m.code === "signature";
        if (m.device && (resend || m.code === "conflict" || m.code === "chain")) {
          // What we believed the relay held for this device was wrong: start again from what it acked.
          // A `signature` refusal means the bytes were damaged on the way (every commit this replica
          // sends was verified or signed here): sending them again from storage repairs it.
          const d = toHex(m.device);
          this.#sent.set(d, this.#acked.get(d) ?? 0);
          this.#inflight = this.#inflight.filter((f) => f.device !== d);
          if (resend) await this.#upload();
          else if (d === this.#replica.device && m.seq !== undefined)
            await this.#replaceDamaged(m.code === "chain" ? m.seq - 1 : m.seq);
        }
        return;
      }
      case "ping":
        this.#send({ type: "pong", nonce: m.nonce });
        return;
      default:
        return;
    }
  }

  /**
   * Publishes a snapshot of the space to the relay (replacing an older one there). Resolves true once
   * stored, false if the relay keeps a newer one. Only when the relay holds everything this device does,
   * since a snapshot may not name commits the relay cannot serve after it.
   */
  publishSnapshot(): Promise<boolean> {
    return new Promise((resolve, reject) => {
      this.#enqueue(async () => {
        try {
          const answer = await this.#publish(true);
          if (answer === false) resolve(false);
          else answer.stored.then(resolve, reject);
        } catch (e) {
          reject(e);
        }
      });
    });
  }

  async #maybePublish(): Promise<void> {
    const ours = (await this.#replica.vector([this.space]))[this.space] ?? {};
    // The connection may have gone meanwhile: the policy publishes at a later one, with no error.
    if ((await this.#snapshots.due(ours)) && this.#welcomed && this.#conn) await this.#publish();
  }

  /** Sends a snapshot; resolves (once sent) to the relay's coming answer, or false if not now. */
  async #publish(asked = false): Promise<{ stored: Promise<boolean> } | false> {
    if (!this.#welcomed || !this.#conn)
      throw new ShoalError(
        "NotConnected",
        "Not connected to the relay: a snapshot can only be published while syncing.",
      );
    // A snapshot's vector travels in one frame (PROTOCOL.md section 4): a space with more devices is
    // not published, and its new devices bootstrap from commits instead.
    const devices = Object.keys((await this.#replica.vector([this.space]))[this.space] ?? {}).length;
    if (devices > MAX_VECTOR_ENTRIES) return false;
    // A space with members is published only when asked (`db.compact`), as a compacted snapshot
    // sealed under its current key epoch (compacted-publish.ts); never by the policy.
    if (await this.#sealer.hasMembershipLog())
      return asked && this.#replica.compaction
        ? publishCompacted(this.space, this.#replica.compaction, this.#acked, this.#snapshots)
        : false;
    // Quarantined slots are left out (publishable-snapshot.ts), or joiners would refuse it whole.
    const content = publishableSnapshot(await this.#replica.readSnapshot(this.space));
    if (!content || Object.keys(content.vector).length === 0) return false;
    // A snapshot may not name commits the relay cannot serve after it.
    for (const [d, seq] of Object.entries(content.vector)) if ((this.#acked.get(d) ?? 0) < seq) return false;
    return this.#snapshots.publish(content);
  }

  /**
   * The relay refused our next commit (`chain`: its stored copy of our commit `seq` does not hash to
   * what we chained to) or a re-upload of our commit `seq` (`conflict`): its copy was damaged on the
   * way. We hold the intact bytes, so we ask it to replace that copy (PROTOCOL.md section 5, "Replacing
   * a damaged upload"); its `ack` then resumes the uploads. Asked at once the first time per commit and
   * connection; asked again only after a backoff delay (`#scheduleReplace`), so a relay that keeps
   * refusing cannot make this loop fast.
   */
  async #replaceDamaged(seq: number): Promise<void> {
    const me = this.#replica.device;
    const held = (await this.#replica.vector([this.space]))[this.space]?.[me] ?? 0;
    if (seq < 1 || seq > held || !this.#welcomed) return;
    if (this.#replaceAsked.has(seq)) {
      // Asked already, and still refused: the replacement itself may have been damaged on its way (the
      // relay then holds another damaged copy). Ask again later, with backoff, or this connection stays
      // stuck for good (hostile soak seed 10068).
      this.#scheduleReplace(seq);
      return;
    }
    this.#replaceAsked.add(seq);
    const epoch = this.#epoch;
    const [intact] = await this.#sealer.sealedRange(me, seq, seq);
    if (!intact || epoch !== this.#epoch) return;
    this.#send({ type: "commits", space: this.#spaceBytes, commits: [intact], more: false, replace: true });
  }

  /** Asks again to replace own commit `seq` after the backoff delay, on this connection only. */
  #scheduleReplace(seq: number): void {
    if (this.#replaceTimer || this.#stopped) return;
    const { baseMs, maxMs } = this.#backoff;
    const delay =
      Math.min(maxMs, baseMs * 2 ** Math.min(this.#replaceAttempt++, 16)) * (0.5 + Math.random() / 2);
    const epoch = this.#epoch;
    this.#replaceTimer = setTimeout(() => {
      this.#replaceTimer = null;
      this.#enqueue(async () => {
        if (epoch !== this.#epoch) return;
        this.#replaceAsked.delete(seq);
        await this.#replaceDamaged(seq);
      });
    }, delay);
  }

  #clearReplaceTimer(): void {
    if (this.#replaceTimer) clearTimeout(this.#replaceTimer);
    this.#replaceTimer = null;
  }

  async #believable(
    entries: VectorEntry[],
    mine: Record<string, number>,
  ): Promise<{ device: DeviceId; seq: number }[]> {
    // A device that left the space and joined again made commits it does not hold (yet): the relay
    // rightly holds them.
    const me = this.#replica.device;
    const made = (await this.#replica.ownCommitsMade?.(this.space)) ?? 0;
    const claimable = made > (mine[me] ?? 0) ? { ...mine, [me]: made } : mine;
    return believableEntries(entries, claimable, me, (e) => this.#hooks.error(e));
  }

  /** Keeps receipts; a storage failure here is reported but never stops syncing (receipts are advisory). */
  async #recordAcks(entries: { device: DeviceId; seq: number }[]): Promise<void> {
    try {
      await this.#replica.recordAcks(this.space, entries);
      this.#hooks.acked();
    } catch (e) {
      this.#hooks.error(asStorageError(e) as ShoalError);
    }
  }

  #noteAck(device: string, seq: number): void {
    if ((this.#acked.get(device) ?? 0) < seq) {
      this.#acked.set(device, seq);
      if (device === this.#replica.device) this.#replaceAttempt = 0;
    }
    if ((this.#sent.get(device) ?? 0) < seq) this.#sent.set(device, seq);
    // Whatever shows the relay holds it (an ack, a welcome, the commit served back) unsticks a commit:
    // the ack that answered the upload may have been lost with its connection (hostile soak seed 10068).
    this.#repair.acked(device, this.#acked.get(device) ?? 0);
  }

  /** Asks for what this replica lacks; `ahead` counts commits received but not applied yet as held. */
  async #pull(ahead?: ReadonlyMap<string, number>): Promise<void> {
    if (!this.#welcomed || this.#pulling || !this.#conn) return;
    const epoch = this.#epoch;
    this.#pulling = true;
    if (!ahead) this.#repair.pullStarted();
    const v = { ...((await this.#replica.vector([this.space]))[this.space] ?? {}) };
    // The connection closed while the vector was read and the next one began: this pull is not its.
    // (Going on marked the next connection's own-head check as asked, and it said synced with its
    // last commit still damaged at the relay: the flaky stuck-upload test "says synced only once...".)
    if (epoch !== this.#epoch) return;
    for (const [d, seq] of this.#repair.refused) if ((v[d] ?? 0) < seq) v[d] = seq;
    if (this.#snapshotCheck && !this.#snapshotCheck.sent && !ahead) {
      // Ask for each snapshot head again (one commit per device): it must be byte-identical.
      this.#snapshotCheck.sent = true;
      for (const [d, seq] of Object.entries(this.#snapshotCheck.heads)) {
        if ((v[d] ?? 0) < seq) continue;
        if (seq > 1) v[d] = seq - 1;
        else delete v[d]; // a vector names no seq 0: absent is "from the first"
      }
    }
    // Once per connection this device's last commit at the relay comes back too: one stored damaged (a
    // bit flipped on the way up) is then replaced (#damagedDownload). A later upload of ours shows it
    // too (the relay refuses it: `chain`), but without one the space would miss it for good.
    const me = this.#replica.device;
    const relayHead = this.#acked.get(me) ?? 0;
    if (!ahead && !this.#ownHeadAsked && relayHead > 0 && (v[me] ?? 0) >= relayHead) {
      this.#ownHeadAsked = true;
      if (relayHead > 1) v[me] = relayHead - 1;
      else delete v[me];
    }
    for (const [d, seq] of ahead ?? []) if ((v[d] ?? 0) < seq) v[d] = seq;
    const vector: VectorEntry[] = Object.entries(v).map(([d, seq]) => ({ device: fromHex(d, 16), seq }));
    // Any number of devices: the vector goes in pages, and the relay answers the last one.
    const pages = vectorPages(vector);
    try {
      pages.forEach((page, i) => {
        const more = i < pages.length - 1;
        this.#send({ type: "pull", space: this.#spaceBytes, vector: page, maxBytes: PULL_BYTES, more });
      });
    } catch (e) {
      this.#pulling = false; // or no pull would ever be sent again on this connection
      throw e;
    }
  }

  async #receive(frames: Uint8Array[]): Promise<void> {
    // Membership commits first: a rotation among them brings the key the others are sealed under.
    const [membership, data] = byMembership(frames);
    if (membership.length > 0) await this.#receiveBatch(membership);
    await this.#receiveBatch(data);
    // The space's log moved: what the relay's log refused before (a redemption whose invitation it did
    // not hold yet) may be accepted now, so it is offered once more.
    if (membership.length > 0 && this.#membershipRefused.size > 0) {
      this.#membershipRefused.clear();
      await this.#upload();
    }
  }

  async #receiveBatch(frames: Uint8Array[]): Promise<void> {
    const opened: OpenedCommit[] = [];
    const prev = new Map<string, Uint8Array>();
    // A batch is up to ~1 MB of commits: opening it whole held the page for 100-350 ms (issue 15).
    const budget = new TaskBudget("open", OPEN_PER_SLICE);
    for (const bytes of frames) {
      await budget.step();
      try {
        const o = await this.#sealer.open(bytes, (d, seq) => prev.get(`${d}.${seq}`));
        prev.set(`${o.commit.device}.${o.commit.seq}`, o.sealed);
        opened.push(o);
      } catch (e) {
        if (e instanceof KeyUnavailable) {
          // Sealed under an epoch whose key has not reached this device yet (a rotation on its way, or
          // this device was removed): not damage; it is asked for again later.
          this.#scheduleRefetch();
          continue;
        }
        // One bad commit must not stop the others: report it, go on, and fetch it again later.
        await this.#damagedDownload(bytes, e as ShoalError);
      }
    }
    if (opened.length === 0) return;
    const mine = (await this.#replica.vector([this.space]))[this.space] ?? {};
    for (const o of opened) {
      // Our own commits coming back prove the relay holds them only if we made them.
      if (o.commit.device !== this.#replica.device || o.commit.seq <= (mine[o.commit.device] ?? 0))
        this.#noteAck(o.commit.device, o.commit.seq);
    }
    // Another version of a held commit is not applied and never replaces the kept one (equivocation).
    const clashes: Clash[] = [];
    const fit = await this.#sealer.screen(opened, this.#source, clashes);
    const againstSnapshot = clashes.find((c) => c.keptSource === "snapshot");
    if (againstSnapshot) {
      const relays = opened.find(
        (o) => o.commit.device === againstSnapshot.device && o.commit.seq === againstSnapshot.seq,
      )!;
      await this.#snapshotContradicted(
        `holds another commit ${againstSnapshot.seq} of device ${againstSnapshot.device} than the relay`,
        { device: againstSnapshot.device, seq: againstSnapshot.seq, relays: relays.sealed },
      );
      return;
    }
    // Their sealed bytes are kept BEFORE applying: a quarantined commit holds its slot with nothing in
    // the log to seal it from again, so these bytes are the only copy to chain to and forward; kept
    // after, a close in between (a reload, a restart) left a held slot with no bytes for good, and
    // sealing it then threw (hostile soak seed 10311). A commit applying refuses otherwise is authentic
    // (it opened), so keeping its bytes is harmless: served again, they are the same.
    await this.#sealer.keep(fit, this.#source);
    const report = await this.#replica.applyCommits(fit.map((o) => o.commit));
    for (const r of report.rejected) this.#hooks.error(r.error);
    // The relay sent them, so it holds them durably: receipts for their authors' commits too.
    const held = new Map<string, number>();
    for (const o of opened) held.set(o.commit.device, Math.max(held.get(o.commit.device) ?? 0, o.commit.seq));
    await this.#recordAcks([...held].map(([device, seq]) => ({ device: device as DeviceId, seq })));
    if (this.#repair.pending)
      this.#repair.settle((await this.#replica.vector([this.space]))[this.space] ?? {});
  }

  /**
   * A commit that did not open. Different bytes than last time (or the first time): damage on the way,
   * so it is fetched again. The same bytes twice from this source: bad at the source, given up on
   * (pulls ask past it) and reported once in `db.integrity`.
   */
  async #damagedDownload(bytes: Uint8Array, error: ShoalError): Promise<void> {
    if (error instanceof ChainMismatch && error.keptSource === "snapshot") {
      // The relay's commit authentically follows something else than the snapshot's commit before it.
      const { header } = decodeSealedCommit(bytes);
      const device = toHex(header.device) as DeviceId;
      await this.#snapshotContradicted(
        `holds a commit ${header.seq - 1} of device ${device} that the relay's next commit does not follow`,
        { device, seq: header.seq - 1, relays: bytes },
      );
      return;
    }
    // Our own commit, damaged: we hold the intact bytes, so the relay's copy is replaced (a copy damaged
    // on the way down only makes that a no-op, answered as a duplicate).
    const own = ownSeq(bytes, this.#replica.device);
    const held = (await this.#replica.vector([this.space]))[this.space]?.[this.#replica.device] ?? 0;
    if (own !== null && own <= held) {
      // Not synced until the relay serves it intact: the next pull asks for this device's head again.
      // (Saying synced as soon as the replacement was sent let a device that then went away leave its
      // damaged copy at the relay for good: hostile soak seed 10170.)
      this.#ownHeadAsked = false;
      this.#ownRecheck = true;
      return this.#replaceDamaged(own);
    }
    await this.#repair.damaged(bytes, error);
  }

  /** Pulls again after the backoff delay (a damaged download), unless a new connection does first. */
  #scheduleRefetch(): void {
    if (this.#refetchTimer || this.#stopped) return;
    const delay = this.#repair.nextDelay(this.#backoff);
    const epoch = this.#epoch;
    this.#refetchTimer = setTimeout(() => {
      this.#refetchTimer = null;
      this.#enqueue(() => (epoch === this.#epoch ? this.#pull() : Promise.resolve()));
    }, delay);
  }

  /**
   * The snapshot this replica was bootstrapped from contradicts the sealed commits (the relay serves
   * another commit at a head it covers, or a next commit that does not follow it; or its records are
   * not what its own log makes them): report its publisher, forget the space and replay it from the
   * sealed commits, never from a snapshot again in this session. `at` is the relay's commit that shows
   * it, when one does.
   */
  async #snapshotContradicted(
    why: string,
    at?: { device: DeviceId; seq: number; relays: Uint8Array },
  ): Promise<void> {
    if (this.#snapshotRefused) return;
    const publisher = this.#snapshotCheck?.publisher ?? at?.device ?? this.#replica.device;
    const ours = at && (await this.#sealer.kept(at.device, at.seq));
    const hash = async (b: Uint8Array) => toHex(await sha256(b));
    this.#snapshotCheck = null;
    this.#snapshotRefused = true;
    const discarded = (await this.#replica.discardSpace?.(this.space)) ?? false;
    this.#sealer.integrity.report({
      kind: "forged-snapshot",
      space: this.space,
      device: publisher,
      seq: at?.seq ?? 0,
      ...(at ? { kept: { hash: await hash(at.relays), source: this.#source } } : {}),
      refused: { hash: ours ? await hash(ours.bytes) : "", source: "snapshot" },
      message: `The snapshot of space ${this.space} published by device ${publisher} ${why}: ${
        discarded
          ? "it was discarded and the space is replayed from the commits."
          : "this device has made commits on top of it, so it was kept."
      }`,
    });
    if (discarded) {
      this.#repair.reset();
      // From a new welcome, with an empty vector: every commit, no snapshot.
      this.#conn?.close("snapshot contradicted");
    }
  }

  #retryUploadSoon(): void {
    if (this.#drainTimer || this.#stopped) return;
    this.#drainTimer = setTimeout(() => {
      this.#drainTimer = null;
      this.poke();
    }, DRAIN_RETRY_MS);
  }

  /** Sends what the relay lacks, oldest first per device, within the window. */
  async #upload(): Promise<void> {
    if (!this.#welcomed || !this.#conn) return;
    const epoch = this.#epoch;
    const ours = (await this.#replica.vector([this.space]))[this.space] ?? {};
    let inflight = this.#inflight.reduce((s, f) => s + f.bytes, 0);
    devices: for (const [device, have] of Object.entries(ours)) {
      if (this.#membershipRefused.has(device)) continue;
      let next = (this.#sent.get(device) ?? 0) + 1;
      while (next <= have) {
        if (inflight >= UPLOAD_WINDOW || !this.#conn) return; // an ack sends the rest
        if (this.#conn.bufferedAmount > UPLOAD_WINDOW) {
          // Behind a large frame (a snapshot): no ack and no event will come for the rest, so look again.
          this.#retryUploadSoon();
          return;
        }
        // Frames leave as they are sealed (upload-frames.ts): the relay stores one while the next is sealed.
        const seal = (a: number, b: number) => this.#sealer.sealedRange(device as DeviceId, a, b);
        const from = next;
        try {
          for await (const f of uploadFrames(seal, next, have, LIMITS)) {
            if (epoch !== this.#epoch || !this.#conn) return;
            this.#send({ type: "commits", space: this.#spaceBytes, commits: f.commits, more: false });
            this.#inflight.push({ device, seq: f.lastSeq, bytes: f.bytes });
            inflight += f.bytes;
            this.#sent.set(device, f.lastSeq);
            next = f.lastSeq + 1;
            if (inflight >= UPLOAD_WINDOW || this.#conn.bufferedAmount > UPLOAD_WINDOW) break;
          }
        } catch (e) {
          // A held slot with nothing to seal it from (a quarantined commit whose bytes a database of an
          // older version lost): that device cannot be uploaded from here, the others still are.
          if (!(e instanceof ValidationError)) throw e;
          this.#hooks.error(e);
          continue devices;
        }
        if (next === from) continue devices; // nothing sealed (never expected): do not spin
      }
    }
  }
}
