import type { Table } from "dexie";
import type { MembershipOp } from "../members/membership-op.ts";
import { mayWrite, type WriteRefusal } from "../members/may-write.ts";
import type { MembershipState } from "../members/membership-state.ts";
import { stateOf } from "../spaces/membership-log.ts";
import type { Commit } from "./commit.ts";
import { isPoisoned, poisoned } from "./quarantine.ts";
import type { MemberRow, SpaceRow } from "./stored-rows.ts";

/**
 * Applies the membership log to the ready commits of spaces that have one (PROTOCOL.md 10): a data
 * commit by a removed device beyond its cut, or by a reader, is refused alone (quarantined, reason
 * `membership`), and so is one by a device the log does not know, unless some of the log's operations
 * wait for their causal past (one may add it): then it waits (parked) with its device's later commits.
 * A joining device's first commit in a space is its own redemption, so its data never comes first. The log is the one stored plus the membership
 * commits of this chunk, so a redemption and the new member's first commits can arrive together.
 */
export async function admitByMembership(
  ready: Commit[],
  waiting: Commit[],
  membersT: Table<MemberRow, string>,
  spacesT: Table<SpaceRow, string>,
): Promise<void> {
  const spaces = [
    ...new Set(ready.filter((c) => c.membership === undefined && !isPoisoned(c)).map((c) => c.space)),
  ];
  if (spaces.length === 0) return;
  const states = new Map<string, MembershipState | undefined>();
  for (const space of spaces) {
    const rows = await membersT.where("space").equals(space).toArray();
    const incoming = ready.filter((c) => c.space === space && c.membership !== undefined);
    if (rows.length === 0 && incoming.length === 0) continue;
    const more = incoming.map((c) => JSON.parse(c.membership!) as MembershipOp);
    states.set(
      space,
      stateOf(
        await spacesT.get(space),
        rows,
        more,
        incoming.map((c) => c.membershipId!),
      ),
    );
  }
  if (![...states.values()].some(Boolean)) return;
  const blocked = new Set<string>();
  for (let i = 0; i < ready.length; i++) {
    const c = ready[i]!;
    const key = `${c.space}|${c.device}`;
    if (blocked.has(key)) {
      waiting.push(...ready.splice(i--, 1));
      continue;
    }
    if (c.membership !== undefined || isPoisoned(c)) continue;
    const state = states.get(c.space);
    const why = mayWrite(state, c.device, c.seq);
    if (why === "not-a-member" && state!.waiting.length > 0) {
      // Operations of the log wait for their causal past: one of them may add this device.
      blocked.add(key);
      waiting.push(...ready.splice(i--, 1));
    } else if (why) {
      ready[i] = poisoned(c, "membership", membershipRefusal(c, why));
    }
  }
}

/** Why the membership log refuses data commit `c` (`mayWrite` said `why`), in words. */
export function membershipRefusal(c: Pick<Commit, "id">, why: WriteRefusal): string {
  return why === "removed"
    ? `Commit ${c.id} was written by a removed device after the last commit its removal kept.`
    : why === "reader"
      ? `Commit ${c.id} was written by a reader, who may not change the space.`
      : `Commit ${c.id} was written by a device that is not a member of the space.`;
}
