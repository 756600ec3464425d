import { live } from "../live/observable.ts";
import { readVector } from "../replica/commit-log.ts";
import type { Replica } from "../replica/replica.ts";
import type { SpaceId } from "../types.ts";
import { removeMember } from "./manage-members.ts";
import { readMembership } from "./membership-log.ts";

/** How long `leave` waits at most for the relay to take this device's removal before it goes anyway. */
export const LEAVE_ANNOUNCE_MS = 5_000;

/**
 * Before a device leaves a space with members: writes its own removal into the log (its person's when
 * it is the person's only device, else this device alone; anyone may remove their own devices), with
 * the cut at everything it holds of its own, so the others see it gone and refuse anything it might
 * still send. When syncing, waits (at most `waitMs`) until the relay acknowledged that operation: the
 * device is about to delete it with the rest of the space, and only what the relay holds goes on.
 * Resolves whether the relay took it; false at once in a space without members or where this device
 * is not a member (nothing to announce), or when `syncing` is false.
 *
 * @example
 * const announced = await announceLeaving(replica, space, isSyncing, LEAVE_ANNOUNCE_MS);
 * await leaveSpace(replica, space);
 */
export async function announceLeaving(
  replica: Replica,
  space: SpaceId,
  syncing: boolean,
  waitMs: number,
): Promise<boolean> {
  const me = replica.device;
  const state = await readMembership(replica.dexie, space);
  const person = state?.deviceOwner.get(me);
  if (!state || person === undefined) return false;
  const only = state.members.get(person)!.devices.length === 1;
  await removeMember(replica, space, only ? { person } : { device: me });
  if (!syncing || waitMs <= 0) return false;
  const seq = (await readVector(replica.dexie, [space]))[space]?.[me] ?? 0;
  const acks = replica.dexie.table<{ seq: number }>("_acks");
  return new Promise<boolean>((resolve) => {
    let done = false;
    const finish = (ok: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      queueMicrotask(() => sub.unsubscribe());
      resolve(ok);
    };
    const timer = setTimeout(() => finish(false), waitMs);
    const sub = live(() => acks.get([space, me])).subscribe({
      next: (row) => {
        if ((row?.seq ?? 0) >= seq) finish(true);
      },
      error: () => finish(false),
    });
  });
}
