import * as A from "@automerge/automerge";
import type { Creation } from "../replica/creation.ts";
import { buildFromCreation } from "../replica/creation.ts";
import { isDeleted, materialize } from "../replica/materialize.ts";
import { withoutConflicts } from "../replica/conflict-values.ts";
import type { SnapshotContent } from "./snapshot-codec.ts";
import { TaskBudget } from "../replica/task-budget.ts";

/** Most records audited between two yields (each loads its document and applies its changes). */
const AUDIT_PER_SLICE = 8;

/** JSON with object keys sorted, to compare rows whatever their key order. */
function canonical(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) =>
    x !== null && typeof x === "object" && !Array.isArray(x)
      ? Object.fromEntries(Object.entries(x as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : 1)))
      : x,
  );
}

const sameSet = (a: readonly string[], b: readonly string[]) =>
  a.length === b.length && [...a].sort().join() === [...b].sort().join();

/**
 * Checks a snapshot's records against its commit log (which the joiner has already tied to the sealed
 * commits): every record's document loads, has the heads it claims, holds no change that is in no
 * commit, already holds every change the log has for it (applying them changes nothing and lacks no
 * dependency), and its row is what the document materializes to. Runs before the import (a forged record
 * is never shown, nor written on), yielding every ~10 ms so the page stays responsive. Resolves with what
 * is wrong with the first bad record, or null.
 *
 * @example
 * const problem = await auditSnapshot(received.content);
 * if (problem) discardAndReplay(problem);
 */
export async function auditSnapshot(content: SnapshotContent): Promise<string | null> {
  const log = new Map<string, { changes: Uint8Array[]; create?: Creation }>();
  for (const c of content.commits)
    for (const rc of c.changes) {
      const entry = log.get(rc.record) ?? { changes: [] };
      entry.changes.push(...(rc.changes as Uint8Array[]));
      if (rc.create) entry.create = rc.create;
      log.set(rc.record, entry);
    }
  const budget = new TaskBudget("audit", AUDIT_PER_SLICE);
  for (const d of content.docs) {
    await budget.step();
    const problem = auditDoc(d, log.get(d.id));
    if (problem) return `Record ${d.id}: ${problem}`;
  }
  return null;
}

function auditDoc(
  d: SnapshotContent["docs"][number],
  log: { changes: Uint8Array[]; create?: Creation } | undefined,
): string | null {
  if (!log) return "its document is in no commit of the snapshot.";
  let doc: A.Doc<unknown>;
  try {
    doc = A.load(d.bin);
  } catch {
    return "its document does not load.";
  }
  const heads = A.getHeads(doc);
  if (!sameSet(heads, d.heads)) return "its document's heads are not the ones stated.";
  const known = new Set<string>();
  for (const ch of log.changes) known.add(A.decodeChange(ch).hash!);
  if (log.create)
    for (const h of A.getHeads(buildFromCreation(d.id, log.create, "00".repeat(16)))) known.add(h);
  if (heads.some((h) => !known.has(h))) return "its document holds a change that is in no commit.";
  const [after] = A.applyChanges(A.clone(doc), log.changes);
  if (A.getMissingDeps(after, []).length > 0 || !sameSet(A.getHeads(after), heads))
    return "its document lacks changes its commits hold.";
  if (isDeleted(after) !== d.deleted) return "its deleted flag is not what its document says.";
  // The conflict listing depends on declarations the audit does not know; the importer recomputes it.
  if (d.row && canonical(materialize(d.id, after)) !== canonical(withoutConflicts({ ...d.row, id: d.id })))
    return "its row is not what its document says.";
  return null;
}
