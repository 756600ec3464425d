import type { Replica } from "./replica.ts";
import type { VectorRow } from "./stored-rows.ts";
import type { DeviceId, SpaceId } from "../types.ts";

// Kept with the replica, not with snapshots: the database removes what an interrupted snapshot import
// left when it opens, and the core of a local database loads no snapshot code (layering.test.ts).

/** The `_meta` key that marks an import of `space` begun and not finished. */
export function importMarkerKey(space: SpaceId): string {
  return `snapshot-import:${space}`;
}

/**
 * Removes what an unfinished import of `space` wrote (its records' documents and rows, its commits)
 * and its marker; nothing when no import of it was under way. The caller holds the replica's lock. The
 * space's vector is empty then (an import writes it last, with the marker's removal), so nothing this
 * device claims to hold goes. This device's own commits are kept, and so is everything when another tab
 * wrote on the records meanwhile (its commits depend on them).
 */
export async function dropInterruptedImport(
  replica: Replica,
  space: SpaceId,
  /** The import's own clean-up: the marker may be gone already (another tab's open removed it). */
  force?: { own: number },
): Promise<boolean> {
  const { dexie } = replica;
  const key = importMarkerKey(space);
  const rowTables = [...replica.specs.keys()].map((c) => dexie.table(c));
  const meta = dexie.table("_meta");
  const tables = [meta, dexie.table("_docs"), dexie.table("_commits"), dexie.table("_vectors"), ...rowTables];
  const ids = await dexie.transaction("rw", tables, async () => {
    const marker = (await meta.get(key)) as { value?: { own?: number } } | undefined;
    if (!marker && !force) return null;
    await meta.delete(key);
    // Another tab wrote on the records meanwhile: they stay (its commits depend on them).
    if ((await ownSeq(replica, space)) > (force?.own ?? marker?.value?.own ?? 0)) return [];
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

/** This device's highest commit of `space` held here (0: none). */
export async function ownSeq(replica: Replica, space: SpaceId): Promise<number> {
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
