import { Locked, ShoalError, ValidationError } from "./errors.ts";
import type { Observable, Subscription } from "./live/observable.ts";
import type { SpaceId } from "./types.ts";
import type { SyncHost, SyncOptions, SyncRunner } from "./sync/sync-runner.ts";

/**
 * What one `db.sync(options)` started, before and after its code arrives. The sync engine, tab election
 * and WebRTC are loaded on first use (a dynamic import, a chunk of its own in an app's build), so an app
 * that never syncs never downloads them. Stopping before the code has arrived cancels the start.
 *
 * @example
 * const run = new LazySync(host, { relay: "ws://127.0.0.1:8787" });
 * await run.publishSnapshot(space); // waits for the runner
 * run.stop();
 */
export class LazySync {
  #runner: SyncRunner | null = null;
  #stopped = false;
  /** The runner once loaded and started; null if stopped first or if its code failed to load. */
  readonly #ready: Promise<SyncRunner | null>;

  /** Throws `ValidationError` at once, as before the code is loaded, when there is nothing to sync with. */
  constructor(host: SyncHost, options: SyncOptions) {
    if (!options?.relay && (options?.transports?.length ?? 0) === 0)
      throw new ValidationError("sync needs a relay URL or a transport.");
    this.#ready = import("./sync/sync-runner.ts")
      .then(({ startSync }) => (this.#stopped ? null : startSync(host, options)))
      .then(
        (runner) => {
          if (runner && this.#stopped) runner.stop();
          else this.#runner = runner;
          return this.#stopped ? null : runner;
        },
        (e: unknown) => {
          // The chunk did not load (offline before it was ever cached, say): say so where sync errors go.
          const error =
            e instanceof ShoalError
              ? e
              : new ShoalError("SyncError", `The sync code could not be loaded: ${String(e)}`, { cause: e });
          if (!this.#stopped) {
            const status = host.status.get();
            host.status.set({
              ...status,
              lastError: { code: error.code, message: error.message, at: Date.now() },
            });
          }
          return null;
        },
      );
  }

  /** Publishes a snapshot now (see `db.publishSnapshot`), once the runner is there. */
  async publishSnapshot(space: SpaceId): Promise<boolean> {
    const runner = await this.#ready;
    if (!runner) throw new ValidationError("publishSnapshot needs sync() running.");
    return runner.publishSnapshot(space);
  }

  /** Retries now; before the runner is there it is about to connect for the first time anyway. */
  reconnect(): void {
    this.#runner?.reconnect();
  }

  /** Stops syncing, or the start still under way. */
  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#runner?.stop();
    this.#runner = null;
  }
}

/**
 * `db.sync`'s run under an at-rest lock: a `LazySync` now, none while the database is locked (nothing
 * can be read or written then; sealed bytes are not moved either), and a new one at each unlock.
 * Without a lock (`lockState` undefined), just the one run.
 *
 * @example
 * const run = new PausableSync(() => new LazySync(host, options), db.lockState);
 */
export class PausableSync {
  #run: LazySync | null;
  #stopped = false;
  readonly #watch: Subscription | undefined;

  constructor(start: () => LazySync, lockState?: Observable<"locked" | "unlocked">) {
    this.#run = start();
    let was = "unlocked";
    this.#watch = lockState?.subscribe((s) => {
      if (s === was || this.#stopped) return;
      was = s;
      this.#run?.stop();
      this.#run = s === "unlocked" ? start() : null;
    });
  }

  /** See `LazySync.publishSnapshot`; `Locked` while locked. */
  publishSnapshot(space: SpaceId): Promise<boolean> {
    return this.#run ? this.#run.publishSnapshot(space) : Promise.reject(new Locked());
  }

  reconnect(): void {
    this.#run?.reconnect();
  }

  stop(): void {
    this.#stopped = true;
    this.#watch?.unsubscribe();
    this.#run?.stop();
    this.#run = null;
  }
}
