import type { Dexie } from "dexie";
import type { SpaceId } from "../types.ts";
import type { Commit, StoredCommit } from "./commit.ts";
import type { Replica } from "./replica.ts";
import type { DocRow } from "./stored-rows.ts";

/**
 * A row of `_erased`: a record id tombstoned for good by a counted `erase` operation of its space's
 * membership log (PROTOCOL.md 12). Nothing of the record is stored again, from any source.
 */
export interface ErasedRow {
  /** The erased record's id. */
  id: string;
  space: SpaceId;
  /** The id of the `erase` operation. */
  op: string;
  /** When this device purged it (its clock, for people only). */
  at: number;
  /**
   * Per device, the highest seq of the commits held here that carried the record when it was purged
   * (absent in rows of older versions): a compaction covering it leaves no sealed copy of them at the
   * relay (`relayCompacted`).
   */
  held?: Record<string, number>;
}

/** The erased ones among `ids` (read in the caller's transaction when there is one). */
export async function erasedAmong(dexie: Dexie, ids: Iterable<string>): Promise<Set<string>> {
  const list = [...new Set(ids)];
  if (list.length === 0) return new Set();
  const table = dexie.table<ErasedRow, string>("_erased");
  // A snapshot asks about thousands of ids, and one get per id held the page for 280 ms (issue 15):
  // when fewer records were ever erased than are asked about, their ids are read instead. A batch of
  // a few records (every received chunk) asks once, without the count's extra round trip first.
  if (list.length <= FEW_IDS) return present(await table.bulkGet(list));
  const count = await table.count();
  if (count === 0) return new Set();
  if (count < list.length) {
    const all = new Set((await table.toCollection().primaryKeys()) as string[]);
    return new Set(list.filter((id) => all.has(id)));
  }
  return present(await table.bulkGet(list));
}

/** Up to this many ids, `erasedAmong` gets them directly. */
const FEW_IDS = 64;

function present(rows: readonly (ErasedRow | undefined)[]): Set<string> {
  return new Set(rows.filter((r): r is ErasedRow => r !== undefined).map((r) => r.id));
}

/** `c` without its changes to erased records (the same object when it has none): the rest still applies. */
export function withoutErased<C extends Commit>(c: C, erased: ReadonlySet<string>): C {
  if (erased.size === 0 || !c.changes.some((rc) => erased.has(rc.record))) return c;
  const changes = c.changes.filter((rc) => !erased.has(rc.record));
  const out = { ...c, changes } as C;
  if ("records" in c) (out as unknown as { records: string[] }).records = changes.map((rc) => rc.record);
  return out;
}

/** The record ids a batch of commits touches. */
export function recordsOf(commits: readonly Commit[]): string[] {
  return commits.flatMap((c) => c.changes.map((rc) => rc.record as string));
}

/**
 * Purges erased records from this device, in one transaction, and tombstones their ids (`_erased`):
 * each record's document (`_docs`), its row, its changes in the commit log (`_commits`: the commit
 * stays, without them, so history, vectors and the other records of the commit are untouched) and in
 * commits parked for later (`_pending`). What stays is the commits' sealed bytes (`_sealed`),
 * ciphertext under the space key, kept so this device can forward its chain byte-identical (PROTOCOL.md
 * 11 says why, and when they go). Returns the ids newly purged.
 */
export async function purgeErased(
  replica: Replica,
  space: SpaceId,
  erased: readonly { id: string; op: string }[],
): Promise<string[]> {
  const { dexie } = replica;
  const erasedT = dexie.table<ErasedRow, string>("_erased");
  const docsT = dexie.table<DocRow, string>("_docs");
  const commitsT = dexie.table<StoredCommit>("_commits");
  const pendingT = dexie.table<Commit, string>("_pending");
  const rowTables = [...replica.specs.keys()].map((c) => dexie.table(c));
  const release = await replica.lock.acquire();
  try {
    replica.assertOpen();
    await replica.drain();
    const purged = await dexie.transaction(
      "rw",
      [erasedT, docsT, commitsT, pendingT, ...rowTables],
      async () => {
        const held = await erasedT.bulkGet(erased.map((e) => e.id));
        const fresh = erased.filter((_, i) => held[i] === undefined);
        if (fresh.length === 0) return [];
        const ids = new Set(fresh.map((e) => e.id));
        const now = Date.now();
        await docsT.bulkDelete([...ids]);
        for (const t of rowTables) await t.bulkDelete([...ids]);
        const touching = await commitsT
          .where("records")
          .anyOf([...ids])
          .distinct()
          .toArray();
        const carried = (id: string) => {
          const out: Record<string, number> = {};
          for (const c of touching)
            if (c.records.includes(id)) out[c.device] = Math.max(out[c.device] ?? 0, c.seq);
          return out;
        };
        await erasedT.bulkPut(
          fresh.map((e) => ({ id: e.id, space, op: e.op, at: now, held: carried(e.id) })),
        );
        await commitsT.bulkPut(touching.map((c) => withoutErased(c, ids)));
        const parked = await pendingT.where("space").equals(space).toArray();
        await pendingT.bulkPut(
          parked.filter((c) => c.changes.some((rc) => ids.has(rc.record))).map((c) => withoutErased(c, ids)),
        );
        // A commit quarantined only because an erased record's changes depended on a refused commit
        // asked a question the erase made moot: a device that received it after the erase stripped
        // those changes and put the commit in its log, even with nothing left (an empty commit holds
        // its slot in history and in exports). It stays quarantined here: the membership pass that
        // follows every absorbed erase (`enforceMembership`) opens it again from its sealed bytes,
        // strips the erased records and applies it, so both devices end with it in their logs. Taking
        // it out of the quarantine here left it in neither (soak seed 100091; seeds 90011 and 91015
        // had it in one device's quarantine and the other's log).
        return [...ids];
      },
    );
    for (const id of purged) replica.cache.delete(id);
    return purged;
  } finally {
    release();
  }
}
