import * as A from "@automerge/automerge";
import { QuotaExceeded, ValidationError } from "../errors.ts";
import { checkContent, reservedRootKey } from "../replica/content-check.ts";
import { asStorageError } from "../replica/quota.ts";
import type { StoredCommit } from "../replica/commit.ts";
import { creationOf } from "../replica/creation.ts";
import { pushTo } from "../replica/group-by.ts";
import { materialize, type Row } from "../replica/materialize.ts";
import type { Replica } from "../replica/replica.ts";
import type { DocRow, VectorRow } from "../replica/stored-rows.ts";
import { validateCommit } from "../replica/validate-commit.ts";
import { erasedAmong, recordsOf, withoutErased } from "../replica/erased.ts";
import type { SpaceId } from "../types.ts";
import type { SnapshotContent, SnapshotDoc } from "./snapshot-codec.ts";
import { emitInParts, storeInSteps } from "./import-in-steps.ts";
import { stageSnapshot } from "./stage-snapshot.ts";
import { CHECK_PER_SLICE, TaskBudget } from "../replica/task-budget.ts";

/**
 * Reads a consistent snapshot of one space (one read transaction): its vector, its whole commit log in
 * causal order, and every record that has an Automerge document with its row.
 */
export async function readSnapshot(replica: Replica, space: SpaceId): Promise<SnapshotContent> {
  const { dexie } = replica;
  const rowTables = [...replica.specs.keys()].map((c) => dexie.table(c));
  return dexie.transaction(
    "r",
    [dexie.table("_vectors"), dexie.table("_commits"), dexie.table("_docs"), ...rowTables],
    async () => {
      const vector: Record<string, number> = {};
      for (const v of await dexie.table<VectorRow>("_vectors").where("space").equals(space).toArray())
        vector[v.device] = v.seq;
      const commits = await dexie
        .table<StoredCommit>("_commits")
        .where("[space+device+seq]")
        .between([space, "", 0], [space, "\uffff", Infinity])
        .toArray();
      commits.sort((a, b) => a.pos! - b.pos!);
      const built = (
        await dexie.table<DocRow, string>("_docs").where("space").equals(space).toArray()
      ).filter((d) => d.bin.length > 0);
      const byCollection = new Map<string, DocRow[]>();
      for (const d of built) pushTo(byCollection, d.collection, d);
      const docs: SnapshotDoc[] = [];
      for (const [collection, list] of byCollection) {
        const rows = replica.specs.has(collection)
          ? ((await dexie.table(collection).bulkGet(list.map((d) => d.id))) as (Row | undefined)[])
          : [];
        list.forEach((d, i) => {
          const row = rows[i];
          // Rows JSON cannot carry exactly (dates, bytes) are left out: the importer materializes those.
          const jsonSafe = row !== undefined && creationOf(row, new Set(), new Set()) !== null;
          docs.push({
            id: d.id,
            collection,
            deleted: d.deleted === 1,
            bin: d.bin,
            heads: d.heads,
            ...(jsonSafe ? { row } : {}),
          });
        });
      }
      return {
        space,
        vector,
        commits: commits.map(({ id, space, device, seq, at, changes }) => ({
          id,
          space,
          device,
          seq,
          at,
          changes,
        })),
        docs,
      };
    },
  );
}

/**
 * Bootstraps a space from a snapshot on a device that holds nothing of it yet: the commit log, the
 * records' documents (or creations) and rows, and the vector, without parsing Automerge except for
 * rows the snapshot could not carry. Everything is checked first (`stageSnapshot`), then written in
 * bounded transactions with yields between them (`storeInSteps`), so queries are served meanwhile;
 * the vector comes last, so the replica never claims a vector it does not hold, and a close or crash
 * in between leaves a marker whose leftovers are removed at the next open. Returns false, keeping
 * nothing of it, if commits of the space arrived meanwhile (then plain sync continues instead).
 */
export async function importSnapshot(replica: Replica, content: SnapshotContent): Promise<boolean> {
  try {
    return await importChecked(replica, content);
  } catch (e) {
    const storage = asStorageError(e);
    if (storage instanceof QuotaExceeded) throw storage;
    // Anything else (content over the limits, a reserved key, a value storage cannot clone, a document
    // Automerge cannot load) refuses the snapshot whole: nothing of it was written.
    const why = e instanceof Error ? e.message : String(e);
    throw new ValidationError(
      `The snapshot of space ${content.space} was refused and nothing of it was imported (${why}); its commits are synced one by one instead.`,
      { cause: e },
    );
  }
}

/** Why a snapshot's row or document may not be stored, or null. */
export function rowProblem(row: object, doc: boolean): string | null {
  // A row carries its `id`; a document never does. Every other reserved key is refused in both.
  const reserved = reservedRootKey(row, doc, doc ? undefined : "id");
  if (reserved !== null) return `the reserved field "${reserved}"`;
  return checkContent(row);
}

async function importChecked(replica: Replica, content: SnapshotContent): Promise<boolean> {
  const { dexie } = replica;
  // Check before writing: well-formed commits of this space, every device's sequence complete from 1.
  const seen = new Map<string, number>();
  const budget = new TaskBudget("check", CHECK_PER_SLICE);
  for (const c of content.commits) {
    await budget.step();
    validateCommit(c);
    if (c.space !== content.space) throw new ValidationError("A snapshot holds a commit of another space.");
    if ((seen.get(c.device) ?? 0) + 1 !== c.seq)
      throw new ValidationError(`A snapshot skips commits of device ${c.device}.`);
    seen.set(c.device, c.seq);
  }
  for (const [device, seq] of Object.entries(content.vector)) {
    if (seen.get(device) !== seq)
      throw new ValidationError("A snapshot's vector does not match its commits.");
  }
  const release = await replica.lock.acquire();
  try {
    await replica.drain();
    const vectorsT = dexie.table<VectorRow>("_vectors");
    const held = () => vectorsT.where("space").equals(content.space).toArray();
    // Read before staging: whether the space is still fresh, and which of its records are erased (a
    // snapshot published before an erase still holds the record: it never comes back from one).
    const erased = await dexie.transaction("r", [vectorsT, dexie.table("_erased")], async () =>
      (await held()).length > 0
        ? null
        : erasedAmong(dexie, [...content.docs.map((d) => d.id), ...recordsOf(content.commits)]),
    );
    if (erased === null) return false;
    if (erased.size > 0)
      content = {
        ...content,
        commits: content.commits.map((c) => withoutErased(c, erased)),
        docs: content.docs.filter((d) => !erased.has(d.id)),
      };
    // Checked and cut into steps whole before the first write: a bad record leaves nothing behind.
    const steps = await stageSnapshot(replica, content, erased, true);
    const done = await storeInSteps(replica, {
      space: content.space,
      steps,
      vector: content.vector,
      fresh: async (at) => (await held()).every((v) => at === "end" && v.device === replica.device),
    });
    if (done)
      await emitInParts(
        replica,
        content.commits.map((c) => ({ ...c, records: c.changes.map((rc) => rc.record) })),
      );
    return done;
  } finally {
    release();
  }
}

/**
 * The documents and rows a snapshot's records become (`_docs` rows, and rows per collection), checked:
 * a row that breaks the content rules throws `ValidationError`. Records in `skip` are left out.
 */
export function snapshotRecords(
  replica: Replica,
  content: SnapshotContent,
  skip: ReadonlySet<string> = new Set(),
): { docRows: DocRow[]; puts: Map<string, Row[]> } {
  const docRows: DocRow[] = [];
  const puts = new Map<string, Row[]>();
  for (const d of content.docs) {
    if (skip.has(d.id)) continue;
    docRows.push({
      id: d.id,
      collection: d.collection,
      space: content.space,
      bin: d.bin,
      heads: d.heads,
      deleted: d.deleted ? 1 : 0,
    });
    if (d.deleted || !replica.specs.has(d.collection)) continue;
    // A sent row's conflict listing is not audited (the audit knows no declarations): a collection
    // with inbox fields materializes its rows from the documents.
    const inbox = replica.specs.get(d.collection)?.inbox;
    const row = inbox && inbox.size > 0 ? undefined : d.row;
    const source = row ?? A.load(d.bin, { actor: replica.actor });
    const problem = rowProblem(source, !row);
    if (problem) throw new ValidationError(`record ${d.id} holds ${problem}`);
    pushTo(
      puts,
      d.collection,
      row ? { ...row, id: d.id } : materialize(d.id, source as A.Doc<unknown>, inbox),
    );
  }
  return { docRows, puts };
}
