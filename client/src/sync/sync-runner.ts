import { ValidationError } from "../errors.ts";
import { ValueStore } from "../live/value-store.ts";
import type { ApplyReport } from "../replica/apply-remote.ts";
import type { Commit } from "../replica/commit.ts";
import type { Replica } from "../replica/replica.ts";
import { webSocketTransport } from "../transports/websocket-transport.ts";
import type { SpaceId, VersionVector } from "../types.ts";
import { recordAcks } from "./acks.ts";
import type { PeerNetwork } from "../peer/peer-signaling.ts";
import { ownCommitsMade, sweepLeftSpace } from "../spaces/leave-space.ts";
import { snapshotCoverage } from "../snapshots/snapshot-coverage.ts";
import { discardSpace } from "../snapshots/snapshot-discard.ts";
import { discardInterruptedImports } from "../replica/interrupted-imports.ts";
import { importSnapshot, readSnapshot } from "../snapshots/snapshot-io.ts";
import { compactionHooks } from "../snapshots/compacted-snapshot.ts";
import { SyncEngine } from "./sync-engine.ts";
import type { SyncStatus } from "../status/sync-status.ts";
import { TabLeader, webLocks } from "../tabs/tab-leader.ts";
import type { Transport } from "../transports/transport.ts";

/** Options of `sync`. */
export interface SyncOptions {
  /** The relay's URL, e.g. `ws://127.0.0.1:8787` (the `/sync/<space>` path is added). */
  relay?: string;
  /** Transports to use instead of (or besides) the relay URL. */
  transports?: readonly Transport[];
  /** Reconnect delays (default 250 ms doubling up to 30 s, with jitter). */
  backoff?: { baseMs: number; maxMs: number };
  /**
   * Snapshots: a fresh device bootstraps from the relay's snapshot (default true). A writer publishes
   * one once the commits beyond the newest snapshot it knows of reach `publishFirst` (default 1,000),
   * then each time the log doubled, and at most every `publishEvery` commits (default 1,000; 0 never).
   */
  snapshots?: { bootstrap?: boolean; publishEvery?: number; publishFirst?: number };
  /**
   * One relay connection per browser (default true where the Web Locks API exists): the tabs syncing
   * this database elect one leader that holds the connections for all of them; the others follow its
   * status (`db.status.role`) and take over when it closes. `false` makes this tab sync on its own.
   */
  leaderElection?: boolean;
  /**
   * Direct device-to-device sync over WebRTC (off unless given): devices of a space find each other
   * through the relay (sealed signalling), then sync over a data channel, and keep syncing with each
   * other when the relay is gone. `iceServers`: STUN/TURN servers, none by default (devices on one
   * network reach each other directly). Each link shows in `status.transports` as kind `"webrtc"`.
   */
  webrtc?: { iceServers?: RTCIceServer[] };
}

/** What a sync run needs of the database. */
export interface SyncHost {
  readonly name: string;
  readonly replica: Replica;
  /** `db.status`, which this run keeps current. */
  readonly status: ValueStore<SyncStatus>;
  vector(spaces?: readonly SpaceId[]): Promise<VersionVector>;
  applyCommits(commits: readonly Commit[], from?: string): Promise<ApplyReport>;
  exportCommits(
    since: VersionVector,
    options?: { spaces?: readonly SpaceId[]; limit?: number },
  ): Promise<Commit[]>;
}

/**
 * Starts a runner once the code `options` asks for is loaded: the WebRTC peer network only with
 * `webrtc`, so an app that syncs through the relay alone never downloads it.
 *
 * @example
 * const runner = await startSync(host, { relay: "ws://127.0.0.1:8787" });
 */
export async function startSync(host: SyncHost, options: SyncOptions): Promise<SyncRunner> {
  const peers = options.webrtc ? (await import("../peer/peer-signaling.ts")).PeerNetwork : undefined;
  // Again here, not only at open: a database opened locked (at rest) could not read its marker then.
  await discardInterruptedImports(host.replica).catch(() => {});
  return new SyncRunner(host, options, peers);
}

/**
 * What one `db.sync(options)` started: with Web Locks, a place in this browser's tab election (the
 * leader tab runs the engine for all of them); without, an engine of this tab's own (role "single").
 */
export class SyncRunner {
  readonly #host: SyncHost;
  readonly #options: SyncOptions;
  readonly #transports: Transport[];
  /** The peer network's class, loaded by `startSync` when `webrtc` is on. */
  readonly #peers: typeof PeerNetwork | undefined;
  #engine: SyncEngine | null = null;
  #tabs: TabLeader | null = null;
  #stop: () => void;
  #stopped = false;

  constructor(host: SyncHost, options: SyncOptions, peers?: typeof PeerNetwork) {
    this.#host = host;
    this.#options = options;
    this.#peers = peers;
    this.#transports = [...(options.transports ?? [])];
    if (options.relay) this.#transports.push(webSocketTransport({ url: options.relay }));
    if (this.#transports.length === 0) throw new ValidationError("sync needs a relay URL or a transport.");
    const locks = options.leaderElection === false ? undefined : webLocks();
    if (locks) {
      const tabs = new TabLeader({
        name: host.name,
        locks,
        status: host.status,
        lead: (status) => {
          const engine = this.#startEngine(status);
          return {
            stop: () => this.#stopEngine(engine),
            reconnect: () => engine.reconnectAll(),
            publishSnapshot: (space) => engine.publishSnapshot(space as SpaceId),
          };
        },
      });
      this.#tabs = tabs;
      tabs.start();
      this.#stop = () => tabs.stop();
    } else {
      // No election (Node, old browsers, or asked not to): this tab syncs on its own, as role "single".
      const engineStatus = new ValueStore<SyncStatus>(host.status.get());
      const engine = this.#startEngine(engineStatus);
      const mirror = engineStatus.subscribe((s) => host.status.set({ ...s, role: "single" }));
      this.#stop = () => {
        mirror.unsubscribe();
        this.#stopEngine(engine);
        // The engine's last word ("local"), without a role: nothing syncs from this tab any more.
        const { role: _role, ...last } = engineStatus.get();
        host.status.set(last);
      };
    }
  }

  /** The engine, when this tab runs one (the leader, or without election). */
  get engine(): SyncEngine | null {
    return this.#engine;
  }

  /** Publishes a snapshot now; a follower tab asks the leader tab, which holds the connections. */
  publishSnapshot(space: SpaceId): Promise<boolean> {
    if (this.#tabs) return this.#tabs.publishSnapshot(space);
    if (!this.#engine) return Promise.reject(new ValidationError("publishSnapshot needs sync() running."));
    return this.#engine.publishSnapshot(space);
  }

  /** Retries now; a follower tab holds no connection and asks the leader tab. */
  reconnect(): void {
    if (this.#tabs) this.#tabs.reconnect();
    else this.#engine?.reconnectAll();
  }

  /** Stops syncing (and releases the tab lock, so another tab takes over at once). */
  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#stop();
  }

  /** Runs the engine into `status` (a store of its own, so the caller can add the role on the way). */
  #startEngine(status: ValueStore<SyncStatus>): SyncEngine {
    const { replica } = this.#host;
    const options = this.#options;
    const engine = new SyncEngine(
      replica.dexie,
      {
        device: replica.device,
        ...(replica.identity && { identity: replica.identity }),
        vector: (spaces) => this.#host.vector(spaces),
        applyCommits: (commits) => this.#host.applyCommits(commits),
        recordAcks: (space, entries) => recordAcks(replica.dexie, space, entries),
        readSnapshot: (space) => readSnapshot(replica, space),
        importSnapshot: (content) => importSnapshot(replica, content),
        discardSpace: (space) => discardSpace(replica, space),
        sweepLeftSpace: (space) => sweepLeftSpace(replica, space),
        ownCommitsMade: (space) => ownCommitsMade(replica, space),
        snapshotCoverage: (space) => snapshotCoverage(replica.dexie, space),
        compaction: compactionHooks(replica),
      },
      this.#transports,
      status,
      { backoff: options.backoff, snapshots: options.snapshots, peers: this.#peerNetwork() },
    );
    this.#engine = engine;
    engine.start();
    return engine;
  }

  #stopEngine(engine: SyncEngine): void {
    engine.stop();
    if (this.#engine === engine) this.#engine = null;
  }

  /** The WebRTC peer network asked for, if any (one per engine: it lives in the leader tab). */
  #peerNetwork(): PeerNetwork | undefined {
    const options = this.#options;
    if (!options.webrtc) return undefined;
    if (!this.#peers) throw new ValidationError("webrtc sync needs the peer code: start it with startSync.");
    const { replica } = this.#host;
    return new this.#peers({
      dexie: replica.dexie,
      iceServers: options.webrtc.iceServers,
      backoff: options.backoff,
      replica: {
        device: replica.device,
        vector: (spaces) => this.#host.vector(spaces),
        applyCommits: (commits) => this.#host.applyCommits(commits, "peer"),
        exportCommits: (since, opts) => this.#host.exportCommits(since, opts),
        // Peer acknowledgements are not relay receipts.
        recordAcks: async () => {},
        readSnapshot: (space) => readSnapshot(replica, space),
        importSnapshot: (content) => importSnapshot(replica, content),
      },
    });
  }
}
