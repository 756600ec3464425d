import type { Replica } from "../replica/replica.ts";
import type { SpaceId } from "../types.ts";

/**
 * Forgets everything this replica holds of one space (rows, documents, commit log, vector, kept sealed
 * commits, commits kept aside), in one IndexedDB transaction, so the space can be replayed from the
 * sealed commits: what a joiner does with a snapshot that contradicts them. Refuses (returns false,
 * changing nothing) when this device has made commits of its own in the space, since those were made
 * on top of what would be forgotten and exist nowhere else for sure.
 */
export async function discardSpace(replica: Replica, space: SpaceId): Promise<boolean> {
  const { dexie } = replica;
  const release = await replica.lock.acquire();
  try {
    await replica.drain();
    const rowTables = [...replica.specs.keys()].map((c) => dexie.table(c));
    const names = ["_commits", "_docs", "_vectors", "_sealed", "_pending"];
    const ids = await dexie.transaction(
      "rw",
      [...names.map((t) => dexie.table(t)), ...rowTables],
      async () => {
        if ((await dexie.table("_vectors").get([space, replica.device])) !== undefined) return null;
        const range = (t: string) =>
          dexie.table(t).where("[space+device+seq]").between([space, "", 0], [space, "\uffff", Infinity]);
        const ids = (await dexie.table("_docs").where("space").equals(space).primaryKeys()) as string[];
        for (const t of rowTables) await t.bulkDelete(ids);
        await dexie.table("_docs").bulkDelete(ids);
        await range("_commits").delete();
        await range("_sealed").delete();
        await dexie.table("_vectors").where("space").equals(space).delete();
        await dexie.table("_pending").where("space").equals(space).delete();
        return ids;
      },
    );
    if (ids === null) return false;
    for (const id of ids) replica.cache.delete(id);
    return true;
  } finally {
    release();
  }
}
