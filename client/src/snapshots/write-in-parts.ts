import type { Table } from "dexie";

/**
 * Records written per step of a snapshot import. An import is one IndexedDB transaction (all or
 * nothing), which cannot yield to the event loop by any other means than waiting for its own requests:
 * each step's rows are checked and their requests issued in one task, and the step after runs once
 * they are stored, in another. 200 records (a document and a row each) take about 10 ms to check and
 * hand to IndexedDB; one step of 100,000 records held the page for seconds (issue 15).
 */
export const IMPORT_PART = 200;
/** Commits stored per step: a snapshot's commits carry up to hundreds of records each. */
export const COMMIT_PART = 16;

/**
 * Stores `rows` in steps of `part`, each awaited before the next is issued. Only inside a transaction
 * that holds `table`: the steps are its own requests, so it never commits in between.
 *
 * @example
 * await putInParts(dexie.table("_commits"), stored, COMMIT_PART, "add");
 */
export async function putInParts<T>(
  table: Table<T>,
  rows: readonly T[],
  part = IMPORT_PART,
  how: "put" | "add" = "put",
): Promise<void> {
  for (let i = 0; i < rows.length; i += part) {
    const step = rows.slice(i, i + part);
    await (how === "add" ? table.bulkAdd(step) : table.bulkPut(step));
  }
}
