import type { IntegritySource } from "../sealing/integrity.ts";
import type { OpenedCommit, SpaceSealer } from "../sealing/sealer.ts";
import { TaskBudget } from "../replica/task-budget.ts";

/**
 * Sealed commits kept per transaction: a snapshot's commits carry up to hundreds of records each, and
 * keeping 30 of 100 records in one transaction held the page for 190 ms (issue 15).
 */
const KEEP_PART = 4;

/**
 * Keeps a snapshot's sealed commits (`SpaceSealer.keep`) a few at a time, with a yield to the page
 * between two transactions. Each commit is kept on its own terms (a clash is equivocation either way),
 * so cutting the list changes nothing but how long the page waits.
 *
 * @example
 * await keepInParts(sealer, received.opened, "snapshot");
 */
export async function keepInParts(
  sealer: SpaceSealer,
  opened: readonly OpenedCommit[],
  source: IntegritySource,
): Promise<void> {
  const budget = new TaskBudget("snapshot-keep", 1);
  for (let i = 0; i < opened.length; i += KEEP_PART) {
    await budget.step();
    await sealer.keep(opened.slice(i, i + KEEP_PART), source);
  }
}
