import * as A from "@automerge/automerge";
import type { Dexie, Table } from "dexie";
import { NotFound, RejoinPending, ValidationError } from "../errors.ts";
import type { DeviceId } from "../types.ts";
import { commitId, type StoredCommit } from "./commit.ts";
import { sameHeads } from "./heads.ts";
import { pushTo } from "./group-by.ts";
import { isDeleted, materialize } from "./materialize.ts";
import { buildFromCreation, CREATION_HEADS, creationRow, type Creation } from "./creation.ts";

import type { PreparedCommit } from "./prepared.ts";
import type { CollectionSpec } from "./collection-spec.ts";
import { settleAll } from "./settle-all.ts";
import {
  leftSpaceKey,
  type DocRow,
  type LeftSpaceRow,
  type SpaceRow,
  type VectorRow,
} from "./stored-rows.ts";
import { assertWritable } from "../spaces/membership-log.ts";
import type { ErasedRow } from "./erased.ts";

const EMPTY = new Uint8Array(0);

/** The state of one document after a written batch. */
export interface WrittenDoc {
  /** Null while the record is still only its creation. */
  doc: A.Doc<unknown> | null;
  create?: Creation;
  heads: string[];
  /** True when another tab had written the document meanwhile and the change was merged into it. */
  merged: boolean;
  /** Cache version of the last entry of this batch for the document, and how many entries touched it. */
  version: number;
  touches: number;
}

/**
 * Writes queued local commits in ONE IndexedDB transaction: each commit takes the next sequence number
 * of (space, this device) inside the transaction, so tabs sharing the device id serialize on the
 * `_vectors` row and never take the same number or leave a gap; rows, Automerge binaries, the commit log
 * and the vector are all written, or (on any error, quota included) none of them.
 *
 * When another tab wrote a document after this tab loaded it, the local Automerge changes are applied
 * onto the stored document instead of replacing it: they depend only on history the stored document has.
 */
export async function writeLocalBatch(
  dexie: Dexie,
  device: DeviceId,
  actor: string,
  batch: readonly PreparedCommit[],
  specs?: ReadonlyMap<string, CollectionSpec>,
): Promise<{ docs: Map<string, WrittenDoc>; commits: StoredCommit[] }> {
  const collections = new Set<string>();
  for (const c of batch) for (const e of c.entries) collections.add(e.collection);
  const docsT = dexie.table<DocRow, string>("_docs");
  const vectorsT = dexie.table<VectorRow>("_vectors");
  const commitsT = dexie.table<StoredCommit>("_commits");
  const metaT = dexie.table<LeftSpaceRow, string>("_meta");
  const spacesT = dexie.table<SpaceRow, string>("_spaces");
  const erasedT = dexie.table("_erased");
  const rowTables = [...collections].map((c) => dexie.table(c));
  rowTables.push(erasedT); // read: an erased record is never written again
  return dexie.transaction("rw", [docsT, vectorsT, commitsT, metaT, spacesT, ...rowTables], async () => {
    const ids = [...new Set(batch.flatMap((c) => c.entries.map((e) => e.record as string)))];
    const spaces = [...new Set(batch.map((c) => c.space))];
    // Every read in flight at once: each awaited request is a round trip to the browser's IndexedDB
    // backend, which dominates a one-record commit. Nothing is written before all have answered.
    const [erasedRows, stored, vectors, left, spaceRows] = await settleAll([
      erasedT.bulkGet(ids) as Promise<(ErasedRow | undefined)[]>,
      docsT.bulkGet(ids),
      vectorsT.bulkGet(spaces.map((s) => [s, device])),
      metaT.bulkGet(spaces.map(leftSpaceKey)),
      spacesT.bulkGet(spaces),
    ] as const);
    // An erased record never comes back, not even from a tab that still had it loaded.
    const erased = erasedRows.find((r) => r !== undefined);
    if (erased) throw new NotFound(`Record ${erased.id} was erased and cannot be written again.`);
    // The membership log may not let this device write (a reader, removed): refused before anything.
    for (const row of spaceRows) assertWritable(row);
    const epochOf = new Map(spaceRows.map((r, i) => [spaces[i] as string, r?.epoch ?? 0]));
    spaces.forEach((space, i) => {
      const ownSeq = left[i]?.value.ownSeq ?? 0;
      // Joined again after leaving: its own old commits take numbers 1..ownSeq everywhere else, so a new
      // one may only follow them once they are back here (from the relay or a peer).
      if ((vectors[i]?.seq ?? 0) < ownSeq) throw new RejoinPending(space, ownSeq);
    });
    const storedById = new Map<string, DocRow>();
    stored.forEach((row) => row && storedById.set(row.id, row));
    const nextSeq = new Map(spaces.map((s, i) => [s as string, vectors[i]?.seq ?? 0]));

    const docs = new Map<string, WrittenDoc>();
    const commits: StoredCommit[] = [];
    for (const c of batch) {
      const seq = nextSeq.get(c.space)! + 1;
      nextSeq.set(c.space, seq);
      for (const e of c.entries) {
        const prev = docs.get(e.record);
        const row = storedById.get(e.record);
        if (row && (row.space !== e.space || row.collection !== e.collection)) {
          throw new ValidationError(`Record ${e.record} belongs to another space or collection.`);
        }
        const curHeads = prev ? prev.heads : row?.heads;
        let doc = e.doc;
        let merged = prev?.merged ?? false;
        if (curHeads && !sameHeads(curHeads, e.baseHeads)) {
          const base = prev
            ? prev.doc
              ? A.clone(prev.doc, { actor })
              : buildFromCreation(e.record, prev.create!, actor)
            : row!.create && row!.bin.length === 0
              ? buildFromCreation(e.record, row!.create, actor)
              : A.load(row!.bin, { actor });
          [doc] = A.applyChanges(base, e.changes as Uint8Array[]);
          if (A.getMissingDeps(doc, []).length > 0) {
            throw new Error(`Internal: local change to ${e.record} depends on history that was never saved.`);
          }
          merged = true;
        }
        docs.set(e.record, {
          doc,
          ...(doc === null && e.create ? { create: e.create } : {}),
          heads: doc === null ? [...CREATION_HEADS] : A.getHeads(doc),
          merged,
          version: e.version,
          touches: (prev?.touches ?? 0) + 1,
        });
      }
      const epoch = epochOf.get(c.space) ?? 0;
      commits.push({
        id: commitId(c.space, device, seq),
        space: c.space,
        device,
        seq,
        at: c.at,
        // Sealed under the epoch current when written, in every tab and after any wipe: one encoding.
        ...(epoch !== 0 && { epoch }),
        changes: c.entries.map(({ record, collection, op, changes, paths, create }) =>
          create
            ? { record, collection, op, changes, paths, create }
            : { record, collection, op, changes, paths },
        ),
        records: c.entries.map((e) => e.record),
      });
    }

    const docRows: DocRow[] = [];
    const puts = new Map<string, unknown[]>();
    const dels = new Map<string, string[]>();
    const meta = new Map<string, { collection: string; space: DocRow["space"] }>();
    for (const c of batch) for (const e of c.entries) meta.set(e.record, e);
    for (const [id, w] of docs) {
      const { collection, space } = meta.get(id)!;
      if (w.doc === null) {
        docRows.push({ id, collection, space, bin: EMPTY, heads: w.heads, deleted: 0, create: w.create! });
        pushTo(puts, collection, creationRow(id, w.create!));
        continue;
      }
      const deleted = isDeleted(w.doc);
      docRows.push({ id, collection, space, bin: A.save(w.doc), heads: w.heads, deleted: deleted ? 1 : 0 });
      if (deleted) pushTo(dels, collection, id);
      else pushTo(puts, collection, materialize(id, w.doc, specs?.get(collection)?.inbox));
    }
    // Every write issued before any is awaited: IndexedDB runs them in this order in the transaction.
    await settleAll([
      docsT.bulkPut(docRows),
      ...[...puts].map(([collection, rows]) => dexie.table(collection).bulkPut(rows)),
      ...[...dels].map(([collection, keys]) => dexie.table(collection).bulkDelete(keys)),
      vectorsT.bulkPut(spaces.map((space) => ({ space, device, seq: nextSeq.get(space)! }))),
      commitsT.bulkAdd(commits),
    ]);
    return { docs, commits };
  });
}
