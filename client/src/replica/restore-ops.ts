import type { Dexie } from "dexie";
import { CommitTooLarge, ValidationError } from "../errors.ts";
import type { CommitId, SpaceId } from "../types.ts";
import type { Replica } from "./replica.ts";
import type { Transaction } from "./transaction.ts";
import {
  changeOf,
  headsOfChange,
  planSpaceRestore,
  RESTORE_MESSAGE_PREFIX,
  type RestorePoint,
} from "./restore.ts";

/** What `db.restore(space, { to })` did. */
export interface SpaceRestoreReport {
  /** Records changed after the point and brought back to their version then (recreated ones included). */
  readonly restored: number;
  /** Records created after the point (or alive then and deleted at it): deleted by the restore. */
  readonly deleted: number;
  /** Records changed after the point that already held their version then (nothing written for them). */
  readonly unchanged: number;
  /** Records of collections this app version does not declare: left as they are. */
  readonly skipped: number;
  /** How many commits the restore wrote. */
  readonly commits: number;
}

/** Records per restore commit, at most (a commit too large is split further: `CommitTooLarge`). */
const RECORDS_PER_COMMIT = 200;

/**
 * `tx.<collection>.restore(id, commit)`: the record back at its version right after `commit`, as a
 * change of this transaction.
 */
export async function restoreRecord(
  dexie: Dexie,
  tx: Transaction,
  collection: string,
  id: string,
  commit: CommitId,
): Promise<boolean> {
  const { change } = await changeOf(dexie, id, commit);
  if (change.collection !== collection)
    throw new ValidationError(`Record ${id} belongs to "${change.collection}", not "${collection}".`);
  return tx.restore(collection, id, headsOfChange(id, change), RESTORE_MESSAGE_PREFIX + commit);
}

/**
 * `db.restore(space, { to })`: every record of the space changed after the point back to its version
 * then, in commits of at most `RECORDS_PER_COMMIT` records, halved until each fits the commit size limit.
 */
export async function restoreSpace(
  replica: Replica,
  transact: <R>(fn: (tx: Transaction) => Promise<R> | R) => Promise<R>,
  space: SpaceId,
  to: CommitId | number | Date | undefined,
): Promise<SpaceRestoreReport> {
  let point: RestorePoint;
  if (typeof to === "string") point = { commit: to };
  else if (typeof to === "number") point = { time: to };
  else if (to instanceof Date) point = { time: to.getTime() };
  else throw new ValidationError("restore needs `to`: a commit id, a time in ms or a Date.");
  const message =
    "commit" in point ? RESTORE_MESSAGE_PREFIX + point.commit : `${RESTORE_MESSAGE_PREFIX}@${point.time}`;
  const plan = await planSpaceRestore(replica.dexie, space, point);
  const known = plan.records.filter((r) => replica.specs.has(r.collection));
  const counts = { restored: 0, deleted: 0, unchanged: 0, commits: 0 };
  const run = async (batch: typeof known): Promise<void> => {
    if (batch.length === 0) return;
    try {
      const done = await transact(async (tx) => {
        const out = { restored: 0, deleted: 0, unchanged: 0 };
        for (const r of batch) {
          const changed = await tx.restore(r.collection, r.id, r.heads, message);
          if (!changed) out.unchanged++;
          else if (r.heads.length === 0 || (await tx.get(r.collection, r.id)) === undefined) out.deleted++;
          else out.restored++;
        }
        return out;
      });
      counts.restored += done.restored;
      counts.deleted += done.deleted;
      counts.unchanged += done.unchanged;
      if (done.restored + done.deleted > 0) counts.commits++;
    } catch (e) {
      if (!(e instanceof CommitTooLarge) || batch.length === 1) throw e;
      const half = Math.ceil(batch.length / 2);
      await run(batch.slice(0, half));
      await run(batch.slice(half));
    }
  };
  for (let i = 0; i < known.length; i += RECORDS_PER_COMMIT)
    await run(known.slice(i, i + RECORDS_PER_COMMIT));
  return { ...counts, skipped: plan.records.length - known.length };
}
