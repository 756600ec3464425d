import { DEFAULT_CONTENT_LIMITS } from "../protocol/limits.ts";

/**
 * Work cut into slices: a generator that yields, between two steps it may be paused at, the Automerge
 * operations the next step applies (0 for a step of other work), and returns its result. Written as a
 * generator so that one body serves both callers: the sliced apply, which may yield to the event loop
 * between steps, and code inside an IndexedDB transaction, which must not (see `runNow`).
 */
export type Slices<T> = Generator<number, T, void>;

/**
 * Yields to the page when the slice of work since the last yield is long enough: by time, or when
 * applying `ops` more Automerge operations would take the slice over its op budget (see `applyChunk`).
 */
export type Pause = (ops: number) => Promise<void>;

/**
 * Runs sliced work to its end without ever pausing, synchronously. The only way to run it inside a
 * Dexie transaction: every `await` of a promise that is not Dexie's there (even an already resolved
 * one) spends one of Dexie's zone echoes (100 per expected await), and once they are spent the
 * transaction's later requests run outside it and it commits early (`PrematureCommitError`, seen with
 * a chunk of thousands of records).
 *
 * @example
 * const accepted = runNow(applyAutomerge(replica, actor, ready, stored, waiting, known, false, ops));
 */
export function runNow<T>(work: Slices<T>): T {
  for (;;) {
    const r = work.next();
    if (r.done) return r.value;
  }
}

/**
 * Runs sliced work, awaiting `pause` before every step with the operations that step will apply.
 * Never call it inside an IndexedDB transaction: a pause that yields lets the transaction commit.
 *
 * @example
 * const accepted = await runSliced(applyAutomerge(...), slicer(replica));
 */
export async function runSliced<T>(work: Slices<T>, pause: Pause): Promise<T> {
  for (;;) {
    const r = work.next();
    if (r.done) return r.value;
    await pause(r.value);
  }
}

/**
 * Most Automerge operations applied between two yields, whatever the clock says: one maximal change
 * (PROTOCOL.md 4). Time alone cannot bound a slice, since the slice that starts under `SLICE_MS` may
 * end with a change of any cost; with this budget the longest slice is one maximal change (measured in
 * docs/RELIABILITY.md, "Large changes") plus at most `SLICE_MS` of cheaper work.
 */
export const SLICE_OPS = DEFAULT_CONTENT_LIMITS.maxOpsPerChange;
