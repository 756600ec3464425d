import { DurabilityPending, NotFound, NotPermitted, ShoalError } from "../errors.ts";
import type { DurableWaitOptions } from "../replica/wait-durable.ts";
import { waitForEveryHolder } from "./hold-receipts.ts";
import type { Replica } from "../replica/replica.ts";
import type { SpaceRow } from "../replica/stored-rows.ts";
import type { SpaceId } from "../types.ts";
import { ensureMembership } from "./manage-members.ts";
import { roleOf } from "./member-keys.ts";
import { appendMembershipOp, readMembership } from "./membership-log.ts";

/** What `db.compact(space)` did. */
export interface Compaction {
  /** The id of the signed `compact` operation. */
  op: string;
  /** Device id -> seq: the relay drops the data commits up to it, and every device its sealed copies. */
  vector: Record<string, number>;
  /** SHA-256 (hex) of the sealed snapshot the relay keeps as the base for fresh devices. */
  snapshot: string;
}

/**
 * Compacts a space at the relay (`db.compact(space)`, PROTOCOL.md 12): publishes a compacted snapshot
 * of what this device holds (records only, erased ones excluded; `publish`, through the running sync),
 * then writes the signed `compact` operation naming that snapshot and its vector into the space's
 * membership log. The relay carries it out when the operation reaches it (it checks the author is an
 * admin, and drops only what its stored snapshot covers), and every device that applies the operation
 * drops its sealed copies of the commits it covers (`applyCompactions`). Before signing, it waits until
 * every current member device has signed a hold receipt for everything up to the snapshot's vector
 * (`waitForEveryHolder`), so no device is left behind commits nobody can serve any more; `timeout` or
 * `signal` end that wait with `CompactionError`. An admin only; a space without
 * a log gets one first when this device created it. Throws `CompactionError` when the relay did not
 * take the snapshot (not connected, or it lacks commits this device holds: sync first).
 */
export async function compactSpace(
  replica: Replica,
  space: SpaceId,
  publish: (space: SpaceId) => Promise<boolean>,
  options: DurableWaitOptions = {},
): Promise<Compaction> {
  replica.assertOpen();
  const { dexie } = replica;
  if (!(await dexie.table<SpaceRow>("_spaces").get(space)))
    throw new NotFound(`No space ${space} on this device.`);
  let state = await readMembership(dexie, space);
  if (!state) {
    try {
      state = await ensureMembership(replica, space);
    } catch (e) {
      if (e instanceof NotPermitted)
        throw new NotPermitted("not-admin", "Only an admin can compact a space: its creator's device can.");
      throw e;
    }
  }
  if (roleOf(state, replica.device)?.role !== "admin")
    throw new NotPermitted("not-admin", "Only an admin can compact a space.");
  const stored = await publish(space).catch((e: unknown) => {
    throw new ShoalError(
      "CompactionError",
      `The snapshot could not be published: ${(e as Error)?.message ?? e}`,
      {
        cause: e,
      },
    );
  });
  const row = await dexie.table<SpaceRow>("_spaces").get(space);
  const published = row?.compaction?.published;
  if (!stored || !published)
    throw new ShoalError(
      "CompactionError",
      "The relay did not store this device's snapshot (it may not hold every commit this device holds yet): nothing was compacted. Let the space sync, then try again.",
    );
  // Every current member device must hold what the relay is about to drop: one behind it could never
  // get those commits again (the relay drops them, and devices drop their sealed copies).
  await waitForEveryHolder(replica, space, published.vector, options).catch((e: unknown) => {
    if (!(e instanceof DurabilityPending)) throw e;
    const missing = (e.result as string[]).map((d) => d.slice(0, 8)).join(", ");
    throw new ShoalError(
      "CompactionError",
      `Not every member device holds the commits to compact yet (${e.reason}; still waiting for ${missing || "none"}): nothing was compacted. Let them sync, then try again.`,
      { cause: e },
    );
  });
  const { id: op } = await appendMembershipOp(replica, space, {
    kind: "compact",
    vector: published.vector,
    snapshot: published.snapshot,
  });
  return { op, ...published };
}
