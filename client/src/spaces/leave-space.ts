import type { Dexie } from "dexie";
import { ValidationError } from "../errors.ts";
import type { Replica } from "../replica/replica.ts";
import { leftSpaceKey, type LeftSpaceRow, type SpaceRow, type VectorRow } from "../replica/stored-rows.ts";
import type { SpaceId } from "../types.ts";

/** What leaving a space removed from this device. */
export interface LeaveReport {
  space: SpaceId;
  /** Records of the space that were on this device (rows and documents, deleted ones included). */
  records: number;
  /** Commits of the space this device held (its own and other devices'). */
  commits: number;
  /** How many of those were this device's own: they must come back before it writes there again. */
  ownCommits: number;
  /**
   * With `announce: true` in a space with members: whether the relay took this device's removal
   * (written by `leave`) before the space went from this device, so the others see it gone. False
   * otherwise: not announced, an open space, not syncing, or no answer in time (the others then still
   * list this device until an admin removes it).
   */
  announced: boolean;
}

/** Tables that hold a space's data, each with the index that finds the space's rows. */
const BY_SPACE_INDEX = ["_vectors", "_pending", "_acks", "_quarantine"] as const;
const BY_SPACE_DEVICE_SEQ = ["_commits", "_sealed"] as const;

/**
 * Leaves a space: removes its key and everything this device holds of it (rows, documents, commit log,
 * vectors, kept sealed commits, commits waiting for their dependencies, relay acknowledgements,
 * quarantine) in ONE IndexedDB transaction, so a crash leaves either all of it or none. The private space
 * cannot be left. Other devices and the relay are not told (there is no membership to change yet): the
 * space goes on for them, and this device can join it again with an invitation link.
 */
export async function leaveSpace(replica: Replica, space: SpaceId): Promise<LeaveReport> {
  replica.assertOpen();
  if (space === replica.privateSpace)
    throw new ValidationError("The database's private space cannot be left (delete the database instead).");
  const release = await replica.lock.acquire();
  try {
    // Queued local writes of the space land first, then go with the rest.
    await replica.drain();
    const report = await removeSpaceData(replica, space, true);
    if (!report) throw new ValidationError(`This device does not belong to space ${space}.`);
    return report;
  } finally {
    release();
  }
}

/**
 * Removes what this device still holds of a space it no longer belongs to (no `_spaces` row): a commit of
 * the space that was being applied when the space was left (here or in another tab) may have been stored
 * after the leave. The sync engine calls this when a space disappears. Does nothing for a space still held.
 */
export async function sweepLeftSpace(replica: Replica, space: SpaceId): Promise<void> {
  const release = await replica.lock.acquire();
  try {
    if (replica.closed) return;
    await replica.drain();
    await removeSpaceData(replica, space, false);
  } finally {
    release();
  }
}

/** How many commits this device had made in a space when it last left it (0 if it never did). */
export async function ownCommitsMade(replica: Replica, space: SpaceId): Promise<number> {
  const row = await replica.dexie.table<LeftSpaceRow, string>("_meta").get(leftSpaceKey(space));
  return row?.value.ownSeq ?? 0;
}

async function removeSpaceData(
  replica: Replica,
  space: SpaceId,
  leaving: boolean,
): Promise<LeaveReport | null> {
  const { dexie } = replica;
  const rowTables = [...replica.specs.keys()].map((c) => dexie.table(c));
  const tables = ["_spaces", "_meta", "_docs", ...BY_SPACE_INDEX, ...BY_SPACE_DEVICE_SEQ].map((t) =>
    dexie.table(t),
  );
  const result = await dexie.transaction("rw", [...tables, ...rowTables], async () => {
    const row = await dexie.table<SpaceRow>("_spaces").get(space);
    if (leaving ? !row : row) return null;
    const own = await dexie.table<VectorRow>("_vectors").get([space, replica.device]);
    const ids = (await dexie.table("_docs").where("space").equals(space).primaryKeys()) as string[];
    for (const t of rowTables) await t.bulkDelete(ids);
    await dexie.table("_docs").bulkDelete(ids);
    let commits = 0;
    for (const t of BY_SPACE_DEVICE_SEQ) {
      const n = await spaceRange(dexie, t, space).delete();
      if (t === "_commits") commits = n;
    }
    for (const t of BY_SPACE_INDEX) await dexie.table(t).where("space").equals(space).delete();
    await dexie.table("_spaces").delete(space);
    const meta = dexie.table<LeftSpaceRow, string>("_meta");
    const earlier = (await meta.get(leftSpaceKey(space)))?.value.ownSeq ?? 0;
    const ownSeq = Math.max(earlier, own?.seq ?? 0);
    if (ownSeq > 0) await meta.put({ key: leftSpaceKey(space), value: { ownSeq, at: Date.now() } });
    return { space, records: ids.length, commits, ownCommits: ownSeq, announced: false, ids };
  });
  if (!result) return null;
  for (const id of result.ids) replica.cache.delete(id);
  const { ids: _ids, ...report } = result;
  return report;
}

function spaceRange(dexie: Dexie, table: string, space: SpaceId) {
  return dexie.table(table).where("[space+device+seq]").between([space, "", 0], [space, "\uffff", Infinity]);
}
