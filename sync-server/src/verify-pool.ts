import { Worker } from "node:worker_threads";
import { verifiedPrefix, type Refusal } from "./commit-refusal.ts";
import type { IncomingCommit } from "./store/store.ts";

/** The commits of a frame up to the first one refused, and that refusal (see `verifiedPrefix`). */
export interface VerifiedFrame {
  verified: IncomingCommit[];
  refused?: Refusal;
}

/** What a worker sends back for one frame: each verified commit's fields but its bytes (kept here). */
export interface FrameOutcome {
  verified: Omit<IncomingCommit, "bytes">[];
  refused?: Refusal;
  /**
   * Index of a commit the worker could not read (a `ProtocolError`): it is checked again here, where
   * it throws exactly as it would have without the pool.
   */
  unreadable?: number;
}

/** One turn's frames for one worker, and its answer: an outcome per frame, in order. */
export interface PoolRequest {
  id: number;
  frames: Uint8Array[][];
}
export interface PoolAnswer {
  id: number;
  outcomes: FrameOutcome[];
}

interface Waiting {
  commits: readonly Uint8Array[];
  resolve: (frame: VerifiedFrame) => void;
  reject: (error: unknown) => void;
}

// The worker is this module's sibling: `.js` in the build, `.ts` when the relay runs its sources.
const FROM_SOURCES = import.meta.url.endsWith(".ts");
const WORKER_URL = new URL(`./verify-worker${FROM_SOURCES ? ".ts" : ".js"}`, import.meta.url);

/**
 * A worker running `verify-worker`. From the sources it first registers tsx itself: on Node 20 the
 * `--import tsx` the relay runs with registers tsx's loader on the main thread only, and a worker
 * given a `.ts` file fails with ERR_UNKNOWN_FILE_EXTENSION.
 */
function startWorker(): Worker {
  if (!FROM_SOURCES) return new Worker(WORKER_URL);
  const tsx = import.meta.resolve("tsx/esm/api");
  const boot = `import(${JSON.stringify(tsx)}).then((t) => { t.register(); return import(${JSON.stringify(WORKER_URL.href)}); });`;
  return new Worker(boot, { eval: true });
}

/**
 * Verifies uploaded commits on worker threads: the frames of one event-loop turn are spread over the
 * workers in one message each, and every worker runs `verifiedPrefix` on its frames, so each frame
 * gets exactly what the relay's thread would have computed: its commits in order up to the first that
 * is not its device's (or not a readable membership commit), and that refusal; the commits after it
 * are not looked at. Ed25519 verification is most of the relay's work per commit (about 0.1 ms), and
 * a worker does it on another core. A worker that fails takes the pool down to verifying on the
 * relay's own thread, for its waiting frames and from then on (`onFailure` hears it once): never a
 * frame lost or refused for it.
 *
 * @example
 * const pool = new VerifyPool(2);
 * const { verified, refused } = await pool.verify(frame.commits);
 * await pool.close();
 */
export class VerifyPool {
  readonly #workers: Worker[] = [];
  readonly #inFlight = new Map<number, { worker: Worker; frames: Waiting[] }>();
  #waiting: Waiting[] = [];
  #scheduled: ReturnType<typeof setImmediate> | undefined;
  #nextId = 0;
  #next = 0;
  #broken = false;
  #closing = false;
  #busy = false;
  readonly #onFailure: ((error: unknown) => void) | undefined;

  /** Starts `threads` workers; `onFailure` hears why the pool went back to the relay's thread. */
  constructor(threads: number, options: { onFailure?: (error: unknown) => void } = {}) {
    this.#onFailure = options.onFailure;
    for (let i = 0; i < threads; i++) {
      const worker = startWorker();
      worker.on("message", (answer: PoolAnswer) => this.#answered(answer));
      worker.on("error", (error) => this.#fail(error));
      worker.on("exit", (code) => this.#fail(new Error(`A verify worker exited with code ${code}.`)));
      // An idle worker must not keep the process alive; one with frames to answer does (`#setBusy`).
      worker.unref();
      this.#workers.push(worker);
    }
  }

  /** `verifiedPrefix(commits)`, on a worker (after this turn); on this thread if the pool failed. */
  verify(commits: readonly Uint8Array[]): Promise<VerifiedFrame> {
    if (this.#broken || commits.length === 0) return Promise.resolve(verifiedPrefix(commits));
    return new Promise((resolve, reject) => {
      this.#waiting.push({ commits, resolve, reject });
      this.#scheduled ??= setImmediate(() => this.#send());
    });
  }

  /** Stops the workers; frames still waiting are verified here. */
  async close(): Promise<void> {
    this.#closing = true;
    this.#fail();
    await Promise.all(this.#workers.map((w) => w.terminate()));
  }

  #send(): void {
    this.#scheduled = undefined;
    const waiting = this.#waiting;
    this.#waiting = [];
    if (this.#broken) return settleHere(waiting);
    // Contiguous shares, one per worker, so a worker's answer resolves its frames in their order.
    const share = Math.ceil(waiting.length / this.#workers.length);
    for (let from = 0; from < waiting.length; from += share) {
      const frames = waiting.slice(from, from + share);
      const worker = this.#workers[this.#next++ % this.#workers.length]!;
      const id = this.#nextId++;
      this.#inFlight.set(id, { worker, frames });
      this.#setBusy(true);
      worker.postMessage({ id, frames: frames.map((f) => [...f.commits]) } satisfies PoolRequest);
    }
  }

  /** Workers keep the process alive while frames wait for them, so an await on `verify` always ends. */
  #setBusy(busy: boolean): void {
    if (busy === this.#busy) return;
    this.#busy = busy;
    for (const w of this.#workers)
      if (busy) w.ref();
      else w.unref();
  }

  #answered({ id, outcomes }: PoolAnswer): void {
    const sent = this.#inFlight.get(id);
    if (!sent) return;
    this.#inFlight.delete(id);
    if (this.#inFlight.size === 0) this.#setBusy(false);
    sent.frames.forEach((w, i) => settle(w, outcomes[i]));
  }

  /** A worker failed or the pool closes: everything waiting is verified on this thread. */
  #fail(error?: unknown): void {
    if (this.#broken) return;
    this.#broken = true;
    if (!this.#closing) this.#onFailure?.(error);
    if (this.#scheduled) clearImmediate(this.#scheduled);
    this.#scheduled = undefined;
    const pending = [...this.#inFlight.values()].flatMap((s) => s.frames);
    this.#inFlight.clear();
    this.#setBusy(false);
    settleHere([...pending, ...this.#waiting.splice(0)]);
  }
}

function settle(w: Waiting, outcome: FrameOutcome | undefined): void {
  if (!outcome) return settleHere([w]);
  const verified: IncomingCommit[] = outcome.verified.map((c, i) => ({ ...c, bytes: w.commits[i]! }));
  if (outcome.unreadable !== undefined) {
    // Checked again here: it throws the same ProtocolError (or, should it pass, goes on as usual).
    try {
      const rest = verifiedPrefix(w.commits.slice(outcome.unreadable));
      w.resolve({
        verified: [...verified, ...rest.verified],
        ...(rest.refused && { refused: rest.refused }),
      });
    } catch (error) {
      w.reject(error);
    }
    return;
  }
  w.resolve({ verified, ...(outcome.refused && { refused: outcome.refused }) });
}

function settleHere(waiting: Waiting[]): void {
  for (const w of waiting) {
    try {
      w.resolve(verifiedPrefix(w.commits));
    } catch (error) {
      w.reject(error);
    }
  }
}
