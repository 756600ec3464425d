import type { StoredCommit } from "../replica/commit.ts";
import type { Replica } from "../replica/replica.ts";
import type { VectorRow } from "../replica/stored-rows.ts";
import { TaskBudget, yieldToPage } from "../replica/task-budget.ts";
import type { DeviceId, SpaceId } from "../types.ts";
import { IMPORT_PART } from "./write-in-parts.ts";

/**
 * One IndexedDB transaction of an import: rows per table, all checked already. Its weight (records,
 * or the records a commit carries) is bounded by `IMPORT_PART`, so one step is about 10 ms of work.
 */
export type ImportStep = Map<string, { rows: unknown[]; how: "put" | "add" }>;

/** The `_meta` key that marks an import of `space` begun and not finished. */
export function importMarkerKey(space: SpaceId): string {
  return `snapshot-import:${space}`;
}

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
 * `discardInterruptedImports` removes what was written when the database next opens. Returns false
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
    if (!(await staged.fresh("start"))) return false;
    // This device's own commits of the space so far (a new member's redemption): any beyond them at a
    // clean-up were made by another tab on the records written meanwhile, which then stay.
    await meta.put({ key, value: { at: replica.now(), own: await ownSeq(replica, staged.space) } });
    return true;
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
    if (!done) await dropInterruptedImport(replica, staged.space);
    return done;
  } catch (e) {
    // A closed database cannot be cleaned now: its marker stays, for the next open.
    await dropInterruptedImport(replica, staged.space).catch(() => {});
    throw e;
  }
}

/**
 * Removes what an unfinished import of `space` wrote (its records' documents and rows, its commits)
 * and its marker; nothing when no import of it was under way. The caller holds the replica's lock. The
 * space's vector is empty then (an import writes it last, with the marker's removal), so nothing this
 * device claims to hold goes. This device's own commits are kept, and so is everything when another tab
 * wrote on the records meanwhile (its commits depend on them).
 */
export async function dropInterruptedImport(replica: Replica, space: SpaceId): Promise<boolean> {
  const { dexie } = replica;
  const key = importMarkerKey(space);
  const rowTables = [...replica.specs.keys()].map((c) => dexie.table(c));
  const meta = dexie.table("_meta");
  const tables = [meta, dexie.table("_docs"), dexie.table("_commits"), dexie.table("_vectors"), ...rowTables];
  const ids = await dexie.transaction("rw", tables, async () => {
    const marker = (await meta.get(key)) as { value?: { own?: number } } | undefined;
    if (!marker) return null;
    await meta.delete(key);
    // Another tab wrote on the records meanwhile: they stay (its commits depend on them).
    if ((await ownSeq(replica, space)) > (marker.value?.own ?? 0)) return [];
    const ids = (await dexie.table("_docs").where("space").equals(space).primaryKeys()) as string[];
    for (const t of rowTables) await t.bulkDelete(ids);
    await dexie.table("_docs").bulkDelete(ids);
    await dexie
      .table<{ device: DeviceId }>("_commits")
      .where("[space+device+seq]")
      .between([space, "", 0], [space, "\uffff", Infinity])
      .filter((c) => c.device !== replica.device)
      .delete();
    return ids;
  });
  for (const id of ids ?? []) replica.cache.delete(id);
  return ids !== null;
}

async function ownSeq(replica: Replica, space: SpaceId): Promise<number> {
  return (await replica.dexie.table<VectorRow>("_vectors").get([space, replica.device]))?.seq ?? 0;
}

/**
 * Removes what imports interrupted by a close or a crash left (`dropInterruptedImport` for every
 * marker); run when the database opens, before anything syncs or reads the space. Returns the spaces
 * cleaned.
 *
 * @example
 * await discardInterruptedImports(replica);
 */
export async function discardInterruptedImports(replica: Replica): Promise<SpaceId[]> {
  const prefix = importMarkerKey("" as SpaceId);
  const keys = (await replica.dexie.table("_meta").where("key").startsWith(prefix).primaryKeys()) as string[];
  const out: SpaceId[] = [];
  for (const key of keys) {
    const space = key.slice(prefix.length) as SpaceId;
    const release = await replica.lock.acquire();
    try {
      if (await dropInterruptedImport(replica, space)) out.push(space);
    } finally {
      release();
    }
  }
  return out;
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
