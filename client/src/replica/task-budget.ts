/**
 * Longest stretch of receive work (opening, checking, applying what sync brings) between two yields to
 * the event loop, in milliseconds. Issue 15 asks for no task over 50 ms while records arrive; a slice
 * of about 10 ms leaves room for one unit of work that starts just under the budget and for a slower
 * device or a busy machine (the same work took 2-3x as long under a load average of 6 on 2 cores).
 */
export const TASK_BUDGET_MS = 10;

/**
 * Most sealed commits opened (signature, decryption, decoding) between two yields, whatever the clock
 * says: a commit of 100 records takes about 3 ms to open, one of the largest allowed much longer, and
 * on a loaded machine (the bench's 2 shared cores) the same work takes several times as long.
 */
export const OPEN_PER_SLICE = 2;
/** Most received commits checked against the content rules between two yields (~2 ms per 100 records). */
export const CHECK_PER_SLICE = 4;

/** How many times each kind of sliced work yielded, and the most units one slice of it did. */
export interface SliceCount {
  yields: number;
  maxUnitsPerSlice: number;
}

/**
 * Counters of sliced work by label, for tests and the bench: whether a loop yields, and how much it
 * did between two yields. Process-wide (every database of the page shares one main thread).
 */
export const sliceStats = new Map<string, SliceCount>();

type Scheduler = { yield?: () => Promise<void> };

/**
 * Lets every task queued meanwhile run (input, rendering, IndexedDB callbacks, another tab's
 * messages), then resumes. In a page a `MessageChannel` message, not `setTimeout(0)` (clamped to 4 ms
 * once nested: a bootstrap yields thousands of times) and not `scheduler.yield` (its continuation
 * runs ahead of tasks already queued, so a search's IndexedDB callbacks would wait for the whole
 * loop); under Node, `setImmediate`.
 *
 * @example
 * await yieldToPage();
 */
export function yieldToPage(): Promise<void> {
  if (typeof window !== "undefined" && typeof MessageChannel === "function") {
    return new Promise((resolve) => {
      const { port1, port2 } = new MessageChannel();
      port1.onmessage = () => {
        port1.close();
        resolve();
      };
      port2.postMessage(null);
      port2.close();
    });
  }
  const s = (globalThis as { scheduler?: Scheduler }).scheduler;
  if (typeof window !== "undefined" && typeof s?.yield === "function") return s.yield();
  // Node: `setImmediate` runs after the I/O and the tasks queued meanwhile (fake-indexeddb queues its
  // own with it), without `setTimeout`'s 1 ms floor, which a bootstrap yielding every few commits
  // would pay thousands of times.
  const immediate = (globalThis as { setImmediate?: (fn: () => void) => unknown }).setImmediate;
  if (typeof immediate === "function") return new Promise((resolve) => void immediate(resolve));
  return new Promise((resolve) => setTimeout(resolve, 0));
}

/**
 * A budget for one loop of work units done on the main thread: `step()` before each unit yields to
 * the event loop when the slice since the last yield has run `budgetMs`, or has done `maxUnits` units
 * whatever the clock says (a bound that does not depend on timing, so a test can check it, and that
 * holds when units are slower than expected). Counts into `sliceStats` under `label`.
 *
 * @example
 * const budget = new TaskBudget("open", 4);
 * for (const bytes of frames) { await budget.step(); open(bytes); }
 */
export class TaskBudget {
  readonly #count: SliceCount;
  readonly #maxUnits: number;
  readonly #budgetMs: number;
  #since = performance.now();
  #units = 0;

  constructor(label: string, maxUnits = Number.POSITIVE_INFINITY, budgetMs = TASK_BUDGET_MS) {
    let count = sliceStats.get(label);
    if (!count) sliceStats.set(label, (count = { yields: 0, maxUnitsPerSlice: 0 }));
    this.#count = count;
    this.#maxUnits = maxUnits;
    this.#budgetMs = budgetMs;
  }

  /** Whether the next unit must wait for a yield. */
  get due(): boolean {
    return this.#units >= this.#maxUnits || performance.now() - this.#since >= this.#budgetMs;
  }

  /** Call before each unit of work: yields first when the slice is spent. */
  async step(): Promise<void> {
    if (this.#units > 0 && this.due) {
      await yieldToPage();
      this.#count.yields++;
      this.#since = performance.now();
      this.#units = 0;
    }
    this.#units++;
    if (this.#units > this.#count.maxUnitsPerSlice) this.#count.maxUnitsPerSlice = this.#units;
  }
}
