import { QuotaExceeded, ValidationError } from "../errors.ts";
import { erasedAmong } from "../replica/erased.ts";
import { asStorageError } from "../replica/quota.ts";
import type { Replica } from "../replica/replica.ts";
import type { DocRow, VectorRow } from "../replica/stored-rows.ts";
import type { DeviceId } from "../types.ts";
import type { SnapshotContent } from "./snapshot-codec.ts";
import { writeSnapshotRecords } from "./snapshot-io.ts";

/**
 * Bootstraps a space with members from a compacted snapshot (PROTOCOL.md 6, "Compacted snapshots"):
 * the records' documents and rows, and the vector, in ONE IndexedDB transaction (all or nothing). No
 * commit comes with it: the commits it covers are gone from the relay, and this device's history of
 * the space starts at its vector. Allowed while this device holds no commit of the space but its own
 * (a new member holds its redemption) and no record of it. Records erased here (`_erased`) are left
 * out. Returns false, changing nothing, when that no longer holds (plain sync continues instead).
 */
export async function importCompacted(replica: Replica, content: SnapshotContent): Promise<boolean> {
  try {
    return await importChecked(replica, content);
  } catch (e) {
    const storage = asStorageError(e);
    if (storage instanceof QuotaExceeded) throw storage;
    const why = e instanceof Error ? e.message : String(e);
    throw new ValidationError(
      `The compacted snapshot of space ${content.space} was refused and nothing of it was imported (${why}).`,
      { cause: e },
    );
  }
}

async function importChecked(replica: Replica, content: SnapshotContent): Promise<boolean> {
  const { dexie } = replica;
  const release = await replica.lock.acquire();
  try {
    await replica.drain();
    const rowTables = [...replica.specs.keys()].map((c) => dexie.table(c));
    const vectorsT = dexie.table<VectorRow>("_vectors");
    const docsT = dexie.table<DocRow, string>("_docs");
    return await dexie.transaction(
      "rw",
      [vectorsT, docsT, dexie.table("_erased"), ...rowTables],
      async () => {
        const held = await vectorsT.where("space").equals(content.space).toArray();
        if (held.some((v) => v.device !== replica.device)) return false;
        if (content.vector[replica.device] !== undefined) return false;
        if ((await docsT.where("space").equals(content.space).count()) > 0) return false;
        const erased = await erasedAmong(
          dexie,
          content.docs.map((d) => d.id),
        );
        await writeSnapshotRecords(replica, content, erased);
        await vectorsT.bulkPut(
          Object.entries(content.vector).map(([device, seq]) => ({
            space: content.space,
            device: device as DeviceId,
            seq,
          })),
        );
        return true;
      },
    );
  } finally {
    release();
  }
}
