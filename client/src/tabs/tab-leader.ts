import { ShoalError } from "../errors.ts";
import type { Subscription } from "../live/observable.ts";
import { ValueStore } from "../live/value-store.ts";
import { LOCAL_STATUS, type SyncStatus } from "../status/sync-status.ts";

/**
 * The part of the Web Locks API (`navigator.locks`) the election needs. The callback runs once the
 * lock is granted, and the lock is held until the promise it returns settles; the browser also
 * releases it when the tab that holds it goes away, which is what makes takeover automatic.
 */
export interface LockManagerLike {
  request<T>(
    name: string,
    options: { signal?: AbortSignal },
    callback: (lock: unknown) => Promise<T> | T,
  ): Promise<T>;
}

/** The part of `BroadcastChannel` the election needs (tests may pass their own). */
export interface ChannelLike {
  postMessage(message: unknown): void;
  onmessage: ((event: { data: unknown }) => void) | null;
  close(): void;
}

/** The sync engine as the leader tab runs it. */
export interface LeaderHandle {
  /** Stops every connection (the engine's own `stop`). */
  stop(): void;
  /** Drops and remakes every connection now (`db.reconnect()`). */
  reconnect(): void;
  /** Publishes a snapshot of a space (`db.publishSnapshot`): true once the relay stored it. */
  publishSnapshot?(space: string): Promise<boolean>;
}

/** Options of `TabLeader`. */
export interface TabLeaderOptions {
  /** The database name: one election and one status channel per database. */
  name: string;
  locks: LockManagerLike;
  /** The database's `db.status`, which this object keeps current in every role. */
  status: ValueStore<SyncStatus>;
  /**
   * Starts the real sync engine once this tab is elected, publishing into `status` (a store of the
   * elector's own, mirrored into `db.status` with role "leader" and broadcast to the followers).
   */
  lead(status: ValueStore<SyncStatus>): LeaderHandle;
  /** Opens the status channel (default: `new BroadcastChannel(name)`). */
  channel?: (name: string) => ChannelLike;
}

/** One leadership: a random id, and when it began, so a late message of an older leader is ignored. */
interface Term {
  readonly id: string;
  readonly since: number;
}

/** What the tabs of one database say to each other on `shoal-status:<name>`. */
type Message =
  | { readonly type: "hello" }
  | { readonly type: "status"; readonly term: Term; readonly status: SyncStatus }
  | { readonly type: "resign"; readonly term: Term }
  | { readonly type: "reconnect" }
  | { readonly type: "publish-snapshot"; readonly id: string; readonly space: string }
  | {
      readonly type: "snapshot-result";
      readonly id: string;
      readonly stored: boolean;
      readonly error?: string;
    };

/** How long a follower waits for the leader's answer to a snapshot request. */
const SNAPSHOT_REQUEST_MS = 60_000;

/** The Web Locks name the tabs of one database compete for. */
export const lockName = (database: string): string => `shoal-sync:${database}`;
/** The BroadcastChannel the leader publishes its status on. */
export const statusChannelName = (database: string): string => `shoal-status:${database}`;

/** `navigator.locks` if this runtime has the Web Locks API (browsers since 2022; not Node). */
export function webLocks(): LockManagerLike | undefined {
  const nav = (globalThis as { navigator?: { locks?: LockManagerLike } }).navigator;
  return typeof nav?.locks?.request === "function" && typeof globalThis.BroadcastChannel === "function"
    ? nav.locks
    : undefined;
}

/**
 * One relay connection per browser: the tabs that call `db.sync()` on the same database compete for
 * one Web Lock; the holder runs the sync engine (`lead`), the others wait in the lock's queue and run
 * nothing. Followers need no connection of their own: their commits land in the shared IndexedDB,
 * where the leader's engine sees them through its live query over `_vectors` (Dexie carries write sets
 * across tabs), and what the leader applies reaches the followers' live queries the same way. Only the
 * status has to travel: the leader posts it on a BroadcastChannel at every change and answers the
 * `hello` of a tab that starts following. When the leader tab closes, the browser releases its lock and
 * the next tab in the queue is granted it and starts its engine; its sessions resume from the relay's
 * vector in `welcome`, so nothing is lost (it is all in IndexedDB) and nothing the relay holds is sent
 * again.
 *
 * @example
 * const tabs = new TabLeader({ name: "clinic", locks: navigator.locks, status, lead: (s) => startEngine(s) });
 * tabs.start();
 * // later: tabs.stop() releases the lock, so another tab takes over at once.
 */
export class TabLeader {
  readonly #name: string;
  readonly #locks: LockManagerLike;
  readonly #status: ValueStore<SyncStatus>;
  readonly #lead: (status: ValueStore<SyncStatus>) => LeaderHandle;
  readonly #channel: ChannelLike;
  readonly #abort = new AbortController();
  /** Leaders whose resignation this tab heard: anything still arriving from them is stale. */
  readonly #resigned = new Set<string>();
  /** Set while leading. */
  #leading: { term: Term; handle: LeaderHandle; mirror: Subscription; release: () => void } | null = null;
  /** The leadership this follower's status comes from. */
  #followed: Term | null = null;
  #started = false;
  #stopped = false;

  constructor(options: TabLeaderOptions) {
    this.#name = options.name;
    this.#locks = options.locks;
    this.#status = options.status;
    this.#lead = options.lead;
    const open = options.channel ?? ((name: string) => new BroadcastChannel(name) as unknown as ChannelLike);
    this.#channel = open(statusChannelName(options.name));
  }

  /** The role this tab has now. */
  get role(): "leader" | "follower" {
    return this.#leading ? "leader" : "follower";
  }

  /** Joins the election: leads at once if no other tab does, else follows until the lock comes free. */
  start(): void {
    if (this.#started) return;
    this.#started = true;
    this.#channel.onmessage = (event) => this.#onMessage(event.data as Message);
    this.#status.set(this.#waiting());
    // A tab that opens after the leader posted its status would otherwise show "connecting" until the
    // next change; the leader answers this with its current status.
    this.#post({ type: "hello" });
    this.#locks
      .request(lockName(this.#name), { signal: this.#abort.signal }, () => this.#becomeLeader())
      .catch((e: unknown) => {
        // Aborting a queued request (stop) rejects it with an AbortError: expected, nothing to report.
        if (this.#stopped) return;
        const error = e as { name?: string; message?: string };
        this.#status.set({
          ...this.#status.get(),
          lastError: { code: error?.name ?? "Error", message: error?.message ?? String(e), at: Date.now() },
        });
      });
  }

  /** Leaves the election: stops the engine if leading (another tab takes over at once) and stops following. */
  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#abort.abort();
    const leading = this.#leading;
    this.#leading = null;
    if (leading) {
      // Unsubscribe first: the engine publishes a last "local" status as it stops, which is this tab's
      // own business, not the followers'.
      leading.mirror.unsubscribe();
      leading.handle.stop();
      this.#post({ type: "resign", term: leading.term });
      leading.release();
    }
    this.#channel.onmessage = null;
    this.#channel.close();
    const { role: _role, ...rest } = this.#status.get();
    this.#status.set({ ...rest, state: "local", transports: [] });
  }

  /** `db.reconnect()`: the leader remakes its connections; a follower asks the leader to. */
  reconnect(): void {
    if (this.#stopped) return;
    if (this.#leading) this.#leading.handle.reconnect();
    else this.#post({ type: "reconnect" });
  }

  /**
   * `db.publishSnapshot(space)`: the leader publishes; a follower asks the leader over the channel and
   * waits (bounded) for its answer.
   */
  publishSnapshot(space: string): Promise<boolean> {
    if (this.#stopped) return Promise.resolve(false);
    const handle = this.#leading?.handle;
    if (handle) return handle.publishSnapshot ? handle.publishSnapshot(space) : Promise.resolve(false);
    const id = randomId();
    return new Promise<boolean>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#snapshotRequests.delete(id);
        reject(new ShoalError("NotConnected", "No leader tab answered the snapshot request."));
      }, SNAPSHOT_REQUEST_MS);
      this.#snapshotRequests.set(id, (stored, error) => {
        clearTimeout(timer);
        this.#snapshotRequests.delete(id);
        if (error) reject(new ShoalError("SnapshotError", error));
        else resolve(stored);
      });
      this.#post({ type: "publish-snapshot", id, space });
    });
  }

  readonly #snapshotRequests = new Map<string, (stored: boolean, error?: string) => void>();

  /** The lock callback: runs the engine and holds the lock until `stop` (or the tab goes away). */
  #becomeLeader(): Promise<void> | undefined {
    // Granted just as `stop` ran: the lock is released on return and the next tab gets it.
    if (this.#stopped) return undefined;
    const term: Term = { id: randomId(), since: Date.now() };
    this.#followed = null;
    const engineStatus = new ValueStore<SyncStatus>({
      ...this.#status.get(),
      state: "connecting",
      transports: [],
    });
    const mirror = engineStatus.subscribe((s) => {
      const status: SyncStatus = { ...s, role: "leader" };
      this.#status.set(status);
      this.#post({ type: "status", term, status });
    });
    return new Promise<void>((release) => {
      try {
        const handle = this.#lead(engineStatus);
        this.#leading = { term, handle, mirror, release };
      } catch (e) {
        // The engine did not start: give the lock to another tab rather than hold it doing nothing.
        mirror.unsubscribe();
        release();
        throw e;
      }
    });
  }

  #onMessage(message: Message): void {
    if (this.#stopped || typeof message !== "object" || message === null) return;
    switch (message.type) {
      case "hello":
        if (this.#leading)
          this.#post({ type: "status", term: this.#leading.term, status: this.#status.get() });
        return;
      case "reconnect":
        this.#leading?.handle.reconnect();
        return;
      case "publish-snapshot": {
        const handle = this.#leading?.handle;
        if (!handle) return;
        const answer = (stored: boolean, error?: string) =>
          this.#post({ type: "snapshot-result", id: message.id, stored, ...(error ? { error } : {}) });
        (handle.publishSnapshot ? handle.publishSnapshot(message.space) : Promise.resolve(false)).then(
          (stored) => answer(stored),
          (e: unknown) => answer(false, String((e as Error)?.message ?? e)),
        );
        return;
      }
      case "snapshot-result":
        this.#snapshotRequests.get(message.id)?.(message.stored, message.error);
        return;
      case "status":
        if (this.#leading || this.#resigned.has(message.term.id)) return;
        // Messages of one sender arrive in order, but two leaders are two senders: a status of the
        // previous leader still in flight must not overwrite the new leader's.
        if (
          this.#followed &&
          message.term.id !== this.#followed.id &&
          message.term.since < this.#followed.since
        )
          return;
        this.#followed = message.term;
        this.#status.set({ ...message.status, role: "follower" });
        return;
      case "resign":
        this.#resigned.add(message.term.id);
        if (this.#leading || this.#followed?.id !== message.term.id) return;
        // Until the next leader speaks (usually within milliseconds: the lock passes straight on).
        this.#followed = null;
        this.#status.set(this.#waiting());
        return;
    }
  }

  /** A follower's status while no leader has spoken yet: sync is wanted, no connection is known. */
  #waiting(): SyncStatus {
    const current = this.#status.get();
    return {
      ...LOCAL_STATUS,
      online: (globalThis as { navigator?: { onLine?: boolean } }).navigator?.onLine ?? true,
      state: "connecting",
      pendingCommits: current.pendingCommits,
      lastSyncedAt: current.lastSyncedAt,
      role: "follower",
    };
  }

  #post(message: Message): void {
    try {
      this.#channel.postMessage(message);
    } catch {
      // A closed channel (the page is going away): the other tabs learn from the lock instead.
    }
  }
}

function randomId(): string {
  const bytes = new Uint8Array(8);
  globalThis.crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
