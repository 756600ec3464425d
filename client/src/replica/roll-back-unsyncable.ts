import * as A from "@automerge/automerge";
import { CommitTooLarge, ValidationError } from "../errors.ts";
import type { CommitId, DeviceId, RecordId, SpaceId } from "../types.ts";
import { commitId, type StoredCommit } from "./commit.ts";
import { isDeleted, materialize, type Row } from "./materialize.ts";
import type { Replica } from "./replica.ts";
import { assertSealable } from "./sealed-size.ts";
import type { DocRow, VectorRow } from "./stored-rows.ts";

/** A record that `rollBackUnsyncable` changed, with what the user last saw of it. */
export interface RolledBackRecord {
  readonly space: SpaceId;
  readonly collection: string;
  readonly id: RecordId;
  /** The record as it was with the removed commits: what the user last saw (undefined if deleted). */
  readonly before: Row | undefined;
  /** The record now, without them (undefined if it no longer exists, e.g. its insert was removed). */
  readonly after: Row | undefined;
}

/** What `rollBackUnsyncable` did in one space. */
export interface UnsyncableRollback {
  readonly space: SpaceId;
  /** This device's commits removed: the unsyncable ones and later ones that touched the same records. */
  readonly removed: readonly CommitId[];
  /** Later commits of this device that were kept, each moved down to the sequence number it now has. */
  readonly renumbered: readonly { readonly from: CommitId; readonly to: CommitId }[];
  /** Every record the removed commits touched. */
  readonly records: readonly RolledBackRecord[];
}

interface AckRow {
  space: SpaceId;
  device: DeviceId;
  seq: number;
}

/** True if the commit can be sealed into one sealed commit. */
function sealable(c: StoredCommit): boolean {
  try {
    assertSealable(c.space, c.changes);
    return true;
  } catch (e) {
    if (e instanceof CommitTooLarge || e instanceof ValidationError) return false;
    throw e;
  }
}

/**
 * The way out for a device holding a commit that can never be sealed (made by a version that checked
 * sizes loosely): such a commit blocks every later upload of the device in its space, since each
 * sealed commit chains to the one before. For each space (or `only`), this device's first unsealable
 * commit not yet acknowledged by the relay, and every later one of this device that touched a record
 * it or another removed commit touched, are removed; the affected records are rebuilt from their
 * Automerge history without those changes. Later commits that touched other records are kept and
 * numbered down so the sequence has no gap. Nothing removed ever left this device: a commit that
 * cannot be sealed, and every later one (whose chain hash needs it), was never uploaded, sent to a
 * peer or written to a bundle, so no other replica can hold or depend on them.
 *
 * Runs under the replica's lock after the write queue drained, in one IndexedDB transaction.
 */
export async function rollBackUnsyncable(replica: Replica, only?: SpaceId): Promise<UnsyncableRollback[]> {
  const release = await replica.lock.acquire();
  try {
    replica.assertOpen();
    await replica.drain();
    const { dexie, device } = replica;
    const commitsT = dexie.table<StoredCommit>("_commits");
    const vectorsT = dexie.table<VectorRow>("_vectors");
    const docsT = dexie.table<DocRow, string>("_docs");
    const rowTables = [...replica.specs.keys()].map((c) => dexie.table(c));
    const out = await dexie.transaction(
      "rw",
      [commitsT, vectorsT, docsT, dexie.table("_sealed"), dexie.table("_acks"), ...rowTables],
      async () => {
        const mine = (await vectorsT.toArray()).filter(
          (v) => v.device === device && (only === undefined || v.space === only),
        );
        const reports: UnsyncableRollback[] = [];
        for (const v of mine) {
          const report = await rollBackSpace(replica, v.space, v.seq);
          if (report) reports.push(report);
        }
        return reports;
      },
    );
    // Cached documents may hold the removed changes: forget them all (nothing is pinned after a drain).
    if (out.length > 0) replica.cache.clear();
    return out;
  } finally {
    release();
  }
}

async function rollBackSpace(
  replica: Replica,
  space: SpaceId,
  held: number,
): Promise<UnsyncableRollback | null> {
  const { dexie, device } = replica;
  const commitsT = dexie.table<StoredCommit>("_commits");
  // What the relay acknowledged was sealed: only later commits can be the stuck ones.
  const acked = (await dexie.table<AckRow>("_acks").get([space, device]))?.seq ?? 0;
  const tail = await commitsT
    .where("[space+device+seq]")
    .between([space, device, acked + 1], [space, device, held], true, true)
    .toArray();
  const first = tail.findIndex((c) => !sealable(c));
  if (first < 0) return null;
  const from = tail[first]!.seq;
  const later = tail.slice(first);

  // A commit goes if it cannot be sealed or builds on a removed one: its Automerge changes to a record
  // depend on the removed changes to that record. Other commits of the tail stay, numbered down.
  const tainted = new Set<string>();
  const removed: StoredCommit[] = [];
  const kept: StoredCommit[] = [];
  for (const c of later) {
    if (!sealable(c) || c.changes.some((rc) => tainted.has(rc.record))) {
      removed.push(c);
      for (const rc of c.changes) tainted.add(rc.record);
    } else kept.push(c);
  }

  const records: RolledBackRecord[] = [];
  for (const id of tainted) records.push(await rebuild(replica, id, removed));

  await commitsT.bulkDelete(later.map((c) => c.pos!));
  const renumbered = kept.map((c, i) => ({ c, seq: from + i }));
  await commitsT.bulkPut(renumbered.map(({ c, seq }) => ({ ...c, id: commitId(space, device, seq), seq })));
  await dexie.table<VectorRow>("_vectors").put({ space, device, seq: from - 1 + kept.length });
  // Nothing at or after `from` can have been sealed, but never let stale sealed bytes chain new commits.
  await dexie
    .table("_sealed")
    .where("[space+device+seq]")
    .between([space, device, from], [space, device, Number.MAX_SAFE_INTEGER], true, true)
    .delete();
  return {
    space,
    removed: removed.map((c) => c.id),
    renumbered: renumbered.map(({ c, seq }) => ({ from: c.id, to: commitId(space, device, seq) })),
    records,
  };
}

/** Rebuilds one record without the changes of the removed commits, returning its value before and after. */
async function rebuild(
  replica: Replica,
  id: string,
  removed: readonly StoredCommit[],
): Promise<RolledBackRecord> {
  const { dexie } = replica;
  const docsT = dexie.table<DocRow, string>("_docs");
  const row = await docsT.get(id);
  const mine = removed.flatMap((c) => c.changes.filter((rc) => rc.record === id));
  const collection = row?.collection ?? mine[0]!.collection;
  const space = row?.space ?? removed[0]!.space;
  const rows = dexie.table<Row, string>(collection);
  const before = await rows.get(id);
  const report = { space, collection, id: id as RecordId, before };
  // Its insert is removed: no other device ever saw the record, and every later change of it was ours.
  if (!row || mine.some((rc) => rc.op === "insert")) {
    await docsT.delete(id);
    await rows.delete(id);
    return { ...report, after: undefined };
  }
  const removedChanges = mine.flatMap((rc) => rc.changes);
  const all = A.getAllChanges(replica.docOfRow(row));
  // Automerge encodes a change the same way every time, so the removed ones are found by their bytes:
  // decoding a 1 MB change only to learn its hash takes seconds. Should an encoding ever differ, by hash.
  let keep = all.filter((ch) => !removedChanges.some((r) => sameBytes(r, ch)));
  if (all.length - keep.length !== removedChanges.length) {
    const gone = new Set(removedChanges.map((ch) => A.decodeChange(ch).hash));
    keep = all.filter((ch) => !gone.has(A.decodeChange(ch).hash));
  }
  const [doc] = A.applyChanges(A.init<unknown>({ actor: replica.actor }), keep);
  if (A.getMissingDeps(doc, []).length > 0) {
    throw new Error(`Internal: record ${id} keeps a change that depends on a removed one.`);
  }
  const deleted = isDeleted(doc);
  await docsT.put({
    id,
    collection,
    space,
    bin: A.save(doc),
    heads: A.getHeads(doc),
    deleted: deleted ? 1 : 0,
  });
  if (deleted) {
    await rows.delete(id);
    return { ...report, after: undefined };
  }
  const after = materialize(id, doc, replica.specs.get(collection)?.inbox);
  await rows.put(after);
  return { ...report, after };
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
