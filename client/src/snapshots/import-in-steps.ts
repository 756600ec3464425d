import type { StoredCommit } from "../replica/commit.ts";
import type { Replica } from "../replica/replica.ts";
import type { VectorRow } from "../replica/stored-rows.ts";
import { TaskBudget, yieldToPage } from "../replica/task-budget.ts";
import type { DeviceId, SpaceId } from "../types.ts";
import { IMPORT_PART } from "./write-in-parts.ts";
import { dropInterruptedImport, importMarkerKey, ownSeq } from "../replica/interrupted-imports.ts";

/**
 * One IndexedDB transaction of an import: rows per table, all checked already. Its weight (records,
 * or the records a commit carries) is bounded by `IMPORT_PART`, so one step is about 10 ms of work.
 */
export type ImportStep = Map<string, { rows: unknown[]; how: "put" | "add" }>;

/**
 * Cuts rows into `ImportStep`s of at most `IMPORT_PART` weight (a row weighs 1 unless told). Rows
 * of one record (its document and its row) are added one after the other and `end()`ed together, so a
 * step never holds a record's document without its row.
 *
 * @example
 * const steps = new ImportSteps();
 * steps.add("_docs", doc).add("patients", row).end();
 */
export class ImportSteps {
  readonly steps: ImportStep[] = [];
  #current: ImportStep = new Map();
  #weight = 0;

  /** Adds one row to the step being filled. */
  add(table: string, row: unknown, how: "put" | "add" = "put", weight = 1): this {
    let entry = this.#current.get(table);
    if (!entry) this.#current.set(table, (entry = { rows: [], how }));
    entry.rows.push(row);
    this.#weight += weight;
    return this;
  }

  /** Ends a unit (a record, a commit): the step is closed if it weighs enough. */
  end(): this {
    if (this.#weight >= IMPORT_PART) this.close();
    return this;
  }

  /** Closes the step being filled (nothing if it is empty). */
  close(): ImportStep[] {
    if (this.#weight > 0 || this.#current.size > 0) this.steps.push(this.#current);
    this.#current = new Map();
    this.#weight = 0;
    return this.steps;
  }
}

/** What `storeInSteps` writes and what it checks before the first and the last transaction. */
export interface StagedImport {
  space: SpaceId;
  steps: readonly ImportStep[];
  vector: Record<string, number>;
  /**
   * Whether the space may still be imported into (read in a transaction over `_vectors` and `_docs`):
   * at `"start"` nothing of it may be held yet, at `"end"` only what this import wrote and this
   * device's own local commits (another tab's, made on records already written).
   */
  fresh(at: "start" | "end"): Promise<boolean>;
}

/**
 * Writes an import that was checked whole beforehand, in bounded transactions with a yield to the page
 * between two (issue 15: one transaction over 10,000 records held every query of the database for
 * seconds). The caller holds the replica's lock. Until the last transaction, which writes the vector,
 * the replica claims nothing of the space (its vector is empty, so sync would start over) and a marker
 * in `_meta` says an import is under way: if the page closes or crashes meanwhile,
 * `discardInterruptedImports` (replica/interrupted-imports.ts) removes what was written when the
 * database next opens. Returns false
 * when the space was no longer fresh (then nothing of it stays); a storage error is rethrown after
 * what was written is removed.
 *
 * @example
 * if (await storeInSteps(replica, staged)) replica.emit(commits, "remote");
 */
export async function storeInSteps(replica: Replica, staged: StagedImport): Promise<boolean> {
  const { dexie } = replica;
  const key = importMarkerKey(staged.space);
  const meta = dexie.table<{ key: string; value: unknown }, string>("_meta");
  const checkTables = [meta, dexie.table("_vectors"), dexie.table("_docs")];
  await dropInterruptedImport(replica, staged.space);
  const begun = await dexie.transaction("rw", checkTables, async () => {
    if (!(await staged.fresh("start"))) return null;
    // This device's own commits of the space so far (a new member's redemption): any beyond them at a
    // clean-up were made by another tab on the records written meanwhile, which then stay.
    const own = await ownSeq(replica, staged.space);
    await meta.put({ key, value: { at: replica.now(), own } });
    return { own };
  });
  if (!begun) return false;
  try {
    // A yield before every transaction but the first: the queries issued meanwhile run in between.
    const budget = new TaskBudget("snapshot-write", 1);
    for (const step of staged.steps) {
      await budget.step();
      const tables = [...step.keys()].map((t) => dexie.table(t));
      await dexie.transaction("rw", tables, async () => {
        for (const [table, { rows, how }] of step)
          await (how === "add" ? dexie.table(table).bulkAdd(rows) : dexie.table(table).bulkPut(rows));
      });
    }
    const done = await dexie.transaction("rw", checkTables, async () => {
      if (!(await meta.get(key)) || !(await staged.fresh("end"))) return false;
      await dexie.table<VectorRow>("_vectors").bulkPut(
        Object.entries(staged.vector).map(([device, seq]) => ({
          space: staged.space,
          device: device as DeviceId,
          seq,
        })),
      );
      await meta.delete(key);
      return true;
    });
    // Without its marker (another tab opening the database took it for an interrupted import and
    // removed what was written so far), what was written after is removed here.
    if (!done) await dropInterruptedImport(replica, staged.space, begun);
    return done;
  } catch (e) {
    // A closed database cannot be cleaned now: its marker stays, for the next open.
    await dropInterruptedImport(replica, staged.space, begun).catch(() => {});
    throw e;
  }
}

/**
 * Tells the replica's listeners about imported commits in parts of about `IMPORT_PART` records, with
 * a yield between two: each listener (live queries, other tabs) then handles a bounded batch.
 */
export async function emitInParts(replica: Replica, commits: readonly StoredCommit[]): Promise<void> {
  let from = 0;
  while (from < commits.length) {
    let weight = 0;
    let to = from;
    while (to < commits.length && weight < IMPORT_PART) weight += Math.max(1, commits[to++]!.changes.length);
    if (from > 0) await yieldToPage();
    replica.emit(commits.slice(from, to), "remote");
    from = to;
  }
}
