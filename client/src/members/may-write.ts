import type { MembershipState } from "./membership-state.ts";

/** Why a data commit may not count, or undefined when it may: see `mayWrite`. */
export type WriteRefusal = "not-a-member" | "removed" | "reader";

/**
 * Whether commit `seq` of `device` counts under `state`: the device is a current device of a writer or
 * admin, or the commit is within the `cut` of its removal or of its person's demotion to reader. A space
 * without a log (`state` undefined) is open: every key holder writes.
 *
 * @example
 * const why = mayWrite(state, commit.device, commit.seq); // undefined, or "reader"
 */
export function mayWrite(
  state: MembershipState | undefined,
  device: string,
  seq: number,
): WriteRefusal | undefined {
  if (!state || state.order.length === 0) return undefined;
  const person = state.deviceOwner.get(device);
  if (person !== undefined) {
    if (state.members.get(person)!.role !== "reader") return undefined;
    return seq <= (state.readerCut.get(device) ?? 0) ? undefined : "reader";
  }
  const cut = state.removedDevices.get(device);
  if (cut !== undefined) return seq <= cut ? undefined : "removed";
  return "not-a-member";
}
