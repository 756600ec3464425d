import type { CommitId, SpaceId } from "../types.ts";
import { applyAutomerge, type AutomergeOutcome, type Quarantined } from "./apply-automerge.ts";
import type { Commit, StoredCommit } from "./commit.ts";
import { prepareWrites } from "./prepare-writes.ts";
import { poisoned, quarantineEntry, type Poisoned } from "./quarantine.ts";
import type { Replica } from "./replica.ts";
import { runNow, SLICE_OPS } from "./slices.ts";
import { erasedAmong, recordsOf, withoutErased } from "./erased.ts";
import type { DocRow, QuarantineRow } from "./stored-rows.ts";

/** What `rebuildRecords` changed. */
export interface RebuildReport {
  readonly space: SpaceId;
  /** Applied commits taken out: those asked for, then those that depended on them. */
  readonly removed: readonly CommitId[];
  /** Quarantined commits brought in: those asked for that applied, and their dependents that did. */
  readonly restored: readonly CommitId[];
  /** Every record rebuilt. */
  readonly records: readonly string[];
}

/**
 * Changes which of a space's commits count on this replica, after the fact: the applied commits `drop`
 * go to quarantine (with the reason `why` gives), and the quarantined ones `add` (opened again from
 * their kept sealed bytes) apply. Every record they touch is rebuilt from scratch out of the commits
 * that count, exactly as if the commits had arrived in the first place with these verdicts: an applied
 * commit whose changes depend on a dropped one goes too (quarantined, `dependency`, as it would have
 * been on arrival), so do its other records, and so on until nothing more changes. Commits quarantined
 * for another reason stay out. Nothing else moves: vectors (a quarantined commit holds its slot like
 * an applied one), kept sealed bytes, parked commits.
 *
 * One IndexedDB transaction; the caller holds the replica's lock with its queue drained, and forgets
 * the cached documents of `records` afterwards. Returns null, changing nothing, if the rebuild would
 * leave some commit waiting for a dependency (it cannot: every change it needs was applied here).
 */
export async function rebuildRecords(
  replica: Replica,
  space: SpaceId,
  drop: readonly StoredCommit[],
  add: readonly Commit[],
  why: (c: Commit) => { reason: string; message: string },
): Promise<RebuildReport | null> {
  const { dexie } = replica;
  const docsT = dexie.table<DocRow, string>("_docs");
  const commitsT = dexie.table<StoredCommit>("_commits");
  const quarantineT = dexie.table<QuarantineRow, string>("_quarantine");
  const rowTables = [...replica.specs.keys()].map((c) => dexie.table(c));
  rowTables.push(dexie.table("_erased")); // read: commits reopened bring no erased record back
  return dexie.transaction("rw", [docsT, commitsT, quarantineT, ...rowTables], async () => {
    // Commits opened again from their sealed bytes bring no erased record back (PROTOCOL.md 12).
    const erased = await erasedAmong(dexie, recordsOf(add));
    add = add.map((c) => withoutErased(c, erased));
    const dropped = drop.map((c) => poisoned(c, why(c).reason, why(c).message));
    const dropIds = new Set(drop.map((c) => c.id));
    const addIds = new Set<string>(add.map((c) => c.id));
    // What can never arrive: every other quarantined commit of the space, and the dropped ones.
    const base: Quarantined = { checksums: new Set(), creations: new Set() };
    for (const q of await quarantineT.where("space").equals(space).toArray()) {
      if (addIds.has(q.id)) continue;
      for (const x of q.checksums) base.checksums.add(x);
      for (const x of q.creations) base.creations.add(x);
    }
    for (const p of dropped) {
      for (const x of p.meta.checksums) base.checksums.add(x);
      for (const x of p.meta.creations) base.creations.add(x);
    }
    const records = new Set([...drop, ...add].flatMap((c) => c.changes.map((rc) => rc.record as string)));
    let touching: StoredCommit[];
    let outcome: AutomergeOutcome;
    for (;;) {
      touching = (
        await commitsT
          .where("records")
          .anyOf([...records])
          .distinct()
          .toArray()
      ).filter((c) => c.space === space && !dropIds.has(c.id));
      // Each commit's changes to the records being rebuilt; its others stay as they are unless it fails.
      const ready: Commit[] = [
        ...touching.map((c) => ({ ...c, changes: c.changes.filter((rc) => records.has(rc.record)) })),
        ...add,
      ].sort((a, b) => (a.device < b.device ? -1 : a.device > b.device ? 1 : a.seq - b.seq));
      const waiting: Commit[] = [];
      const known = { checksums: new Set(base.checksums), creations: new Set(base.creations) };
      outcome = runNow(
        applyAutomerge(replica, replica.actor, ready, new Map(), waiting, known, false, SLICE_OPS),
      );
      if (waiting.length > 0) return null;
      const ok = new Set(outcome.commits.map((c) => c.id));
      const more = touching
        .filter((c) => !ok.has(c.id))
        .flatMap((c) => c.records)
        .filter((r) => !records.has(r));
      if (more.length === 0) break;
      for (const r of more) records.add(r);
    }
    const ok = new Set(outcome.commits.map((c) => c.id));
    const lost = touching.filter((c) => !ok.has(c.id));
    const restored = add.filter((c) => ok.has(c.id));
    const cascaded = new Map(outcome.quarantined.map((p) => [p.id, p]));

    // Records: rebuilt, or gone when no commit that counts creates or changes them.
    const ids = [...records];
    const before = await docsT.bulkGet(ids);
    const writes = runNow(prepareWrites(replica, outcome.docs));
    for (const [collection, rows] of writes.puts) await dexie.table(collection).bulkPut(rows);
    for (const [collection, gone] of writes.dels) await dexie.table(collection).bulkDelete(gone);
    await docsT.bulkPut(writes.docRows);
    const kept = new Set(writes.docRows.map((r) => r.id));
    for (const [i, id] of ids.entries()) {
      const row = before[i];
      if (!row || kept.has(id)) continue;
      await docsT.delete(id);
      if (replica.specs.has(row.collection)) await dexie.table(row.collection).delete(id);
    }

    // The log: out go the dropped and those that depended on them, in come the restored.
    const out = [...drop, ...lost];
    await commitsT.bulkDelete(out.map((c) => c.pos!));
    await commitsT.bulkAdd(restored.map((c) => ({ ...c, records: c.changes.map((rc) => rc.record) })));
    await quarantineT.bulkDelete(restored.map((c) => c.id));
    const now = Date.now();
    const refused: Poisoned[] = [
      ...dropped,
      ...lost.map((c) => cascaded.get(c.id) ?? poisoned(c, "dependency", "it depends on a commit taken out")),
    ];
    await quarantineT.bulkPut(refused.map((p) => quarantineEntry(p, "membership", now).row));
    return {
      space,
      removed: out.map((c) => c.id),
      restored: restored.map((c) => c.id),
      records: ids,
    };
  });
}
