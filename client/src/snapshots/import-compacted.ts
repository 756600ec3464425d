import { QuotaExceeded, ValidationError } from "../errors.ts";
import { erasedAmong } from "../replica/erased.ts";
import { asStorageError } from "../replica/quota.ts";
import type { Replica } from "../replica/replica.ts";
import type { DocRow, VectorRow } from "../replica/stored-rows.ts";
import type { SnapshotContent } from "./snapshot-codec.ts";
import { storeInSteps } from "./import-in-steps.ts";
import { stageSnapshot } from "./stage-snapshot.ts";

/**
 * Bootstraps a space with members from a compacted snapshot (PROTOCOL.md 6, "Compacted snapshots"):
 * the records' documents and rows, and the vector, checked whole first and then written in bounded
 * transactions, the vector last (`storeInSteps`: queries are served meanwhile, and what a close or a
 * crash interrupts is removed at the next open). No commit comes with it: the commits it covers are
 * gone from the relay, and this device's history of the space starts at its vector. Allowed while this device holds no commit of the space but its own
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
    const vectorsT = dexie.table<VectorRow>("_vectors");
    const docsT = dexie.table<DocRow, string>("_docs");
    const othersHeld = async () =>
      (await vectorsT.where("space").equals(content.space).toArray()).some(
        (v) => v.device !== replica.device,
      );
    if (content.vector[replica.device] !== undefined) return false;
    const erased = await dexie.transaction("r", [vectorsT, docsT, dexie.table("_erased")], async () =>
      (await othersHeld()) || (await docsT.where("space").equals(content.space).count()) > 0
        ? null
        : erasedAmong(
            dexie,
            content.docs.map((d) => d.id),
          ),
    );
    if (erased === null) return false;
    // Checked and cut into steps whole before the first write: a bad record leaves nothing behind.
    const steps = await stageSnapshot(replica, content, erased, false);
    return await storeInSteps(replica, {
      space: content.space,
      steps,
      vector: content.vector,
      fresh: async (at) =>
        !(await othersHeld()) &&
        (at === "end" || (await docsT.where("space").equals(content.space).count()) === 0),
    });
  } finally {
    release();
  }
}
