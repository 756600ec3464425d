import type { StoredCommit } from "../replica/commit.ts";
import { CREATION_HEADS, creationRow } from "../replica/creation.ts";
import type { Replica } from "../replica/replica.ts";
import type { DocRow } from "../replica/stored-rows.ts";
import { TaskBudget } from "../replica/task-budget.ts";
import type { SnapshotContent } from "./snapshot-codec.ts";
import { snapshotRecords } from "./snapshot-io.ts";
import { ImportSteps, type ImportStep } from "./import-in-steps.ts";
import { IMPORT_PART } from "./write-in-parts.ts";

const EMPTY = new Uint8Array(0);
/**
 * Records checked and turned into rows between two yields: a record without a sent row loads its
 * Automerge document (about 1 ms for a small one, far more for a long text), so a handful at a time.
 */
const RECORDS_PER_SLICE = 16;

/**
 * Everything a snapshot's import writes (its commits when `withCommits`, its records' documents and
 * rows, the records still only their creation), checked against the content rules and cut into
 * bounded `ImportStep`s, BEFORE anything is written: a record that breaks the rules throws
 * `ValidationError` here and the import stores nothing. Yields to the page while it works (it loads
 * documents, which takes seconds for a large snapshot). Records in `erased` are left out; the caller
 * has already removed them from the commits.
 *
 * @example
 * const steps = await stageSnapshot(replica, content, erased, true);
 */
export async function stageSnapshot(
  replica: Replica,
  content: SnapshotContent,
  erased: ReadonlySet<string>,
  withCommits: boolean,
): Promise<ImportStep[]> {
  const out = new ImportSteps();
  const budget = new TaskBudget("snapshot-stage", RECORDS_PER_SLICE);
  if (withCommits) {
    for (const c of content.commits) {
      const stored: StoredCommit = { ...c, records: c.changes.map((rc) => rc.record) };
      out.add("_commits", stored, "add", Math.max(1, c.changes.length)).end();
    }
    // The commits go first, in their own steps: a record's document never lands before its history.
    out.close();
  }
  for (let i = 0; i < content.docs.length; i++) {
    await budget.step();
    const { docRows, puts } = snapshotRecords(
      replica,
      { ...content, docs: content.docs.slice(i, i + 1) },
      erased,
    );
    for (const d of docRows) out.add("_docs", d);
    for (const [collection, rows] of puts) for (const r of rows) out.add(collection, r);
    out.end();
  }
  if (!withCommits) return out.close();
  const withDoc = new Set(content.docs.map((d) => d.id));
  // A creation's row is cheap to build: many more per slice.
  const creations = new TaskBudget("snapshot-stage", IMPORT_PART);
  for (const c of content.commits) {
    for (const rc of c.changes) {
      if (!rc.create || withDoc.has(rc.record)) continue;
      await creations.step();
      const doc: DocRow = {
        id: rc.record,
        collection: rc.collection,
        space: content.space,
        bin: EMPTY,
        heads: [...CREATION_HEADS],
        deleted: 0,
        create: rc.create,
      };
      out.add("_docs", doc);
      if (replica.specs.has(rc.collection)) out.add(rc.collection, creationRow(rc.record, rc.create));
      out.end();
    }
  }
  return out.close();
}
