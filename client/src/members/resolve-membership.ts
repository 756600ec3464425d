import type { MembershipAction, MembershipOp } from "./membership-op.ts";
import { order, type LogNode } from "./membership-order.ts";
import { epochsIn, refusal, replay } from "./membership-replay.ts";
import type { MembershipState, RefusedOpReason, Rotation } from "./membership-state.ts";

// The state's types live in membership-state.ts; they are named here too, where most readers look.
export type {
  InvitationState,
  Member,
  MembershipState,
  RefusedOpReason,
  Rotation,
} from "./membership-state.ts";

/**
 * Computes a space's members, roles and removed devices from the operations of its membership log
 * (`ops`: op id -> op, signatures already verified with `verifyOp`), deterministically: the result
 * depends only on the set of operations, never on the order they arrived in. `creatorKey` is the
 * Ed25519 key (hex) the space is bound to: only a `create` by it starts the log.
 *
 * The rules (PROTOCOL.md, "Membership log"):
 * 1. Order: the ops form a graph by their `parents`; the log's order is a topological order that
 *    takes, among the ops ready, the smallest id first. An op whose ancestors are not all held waits.
 * 2. Authority at that point: an op counts only if its author was allowed to do it in the state its
 *    own causal past gives (its ancestors that count): admins add people and devices, change roles and
 *    remove; any member may add a device of their own and remove themselves or a device of their own.
 * 3. Removal wins: a counted removal of a person (or device) cancels every op that person (device)
 *    authored that is not in the removal's causal past: what they did concurrently with, or after,
 *    being removed. Removals are applied most senior remover first (then smallest op id), and a
 *    removal cancelled by an earlier one does nothing, so two admins removing each other concurrently
 *    end with the more senior one in place.
 * 4. Removal also wins over concurrent grants: an op adding a device to, re-adding, or changing the
 *    role of a person, concurrent with a counted removal of that person, does not count.
 * 5. Invitations: a redemption needs its invitation in its causal past, not revoked nor expired; a
 *    revocation cancels concurrent redemptions; only the first `uses` redemptions in the log's order count.
 * 6. Concurrent adds of one person or one device: the first in the log's order counts.
 * Rules 2 to 6 are applied until nothing changes (cancelling an op can take away what later ops
 * relied on).
 *
 * @example
 * const state = resolveMembership(ops, creatorKey);
 * state.members.get(person)?.role; // "writer"
 */
export function resolveMembership(
  ops: ReadonlyMap<string, MembershipOp>,
  creatorKey: string,
): MembershipState {
  const { nodes, waiting } = order(ops);
  // Verdicts of every rule but rule 2, which only ever add up (a refused op never counts again).
  const sticky = new Map<string, RefusedOpReason>();
  for (const n of nodes) {
    const reason = structural(n, creatorKey);
    if (reason) sticky.set(n.id, reason);
  }
  let refused = new Map(sticky);
  let authority = "";
  for (let round = 0; round <= nodes.length; round++) {
    let changed = false;
    // Rule 2: authority in the op's own causal past, as the other rules' verdicts leave it. Decided
    // again from scratch each round: a removal that counted in an earlier round may have been refused
    // since (rules 3 and 4: a mutual removal of admins), and the ops whose past it was in regain the
    // authority it took (membership soak seed 92057: the senior admin's shares stayed refused, so it
    // wrote them again and again).
    refused = new Map(sticky);
    for (const n of nodes) {
      if (refused.has(n.id)) continue;
      const past = replay(nodes.filter((m) => n.ancestors.has(m.id) && !refused.has(m.id)));
      const why = refusal(n.op, past, epochsIn(nodes, n));
      if (why) refused.set(n.id, why);
    }
    const verdicts = [...refused].filter(([id]) => !sticky.has(id)).join();
    if (verdicts !== authority) changed = true;
    authority = verdicts;
    const refuse = (id: string, why: RefusedOpReason) => {
      refused.set(id, why);
      sticky.set(id, why);
    };
    // Concurrent adds of one person or one device: the first in the log's order counts.
    for (const id of replay(nodes.filter((m) => !refused.has(m.id))).conflicts) {
      refuse(id, "already-added");
      changed = true;
    }
    // Invitations: a revocation cancels the redemptions outside its causal past; redemptions beyond an
    // invitation's uses do not count, the first ones in the log's order do.
    const used = new Map<string, number>();
    const invites = replay(nodes.filter((m) => !refused.has(m.id))).invitations;
    for (const n of nodes) {
      const a = n.op.action;
      if (refused.has(n.id)) continue;
      if (a.kind === "revoke-invite") {
        for (const m of nodes) {
          const b = m.op.action;
          if (
            b.kind === "redeem" &&
            b.invitation === a.invitation &&
            !refused.has(m.id) &&
            !n.ancestors.has(m.id)
          ) {
            refuse(m.id, "invitation-revoked");
            changed = true;
          }
        }
      }
    }
    for (const n of nodes) {
      const a = n.op.action;
      if (a.kind !== "redeem" || refused.has(n.id)) continue;
      const count = (used.get(a.invitation) ?? 0) + 1;
      used.set(a.invitation, count);
      if (count > (invites.get(a.invitation)?.uses ?? 0)) {
        refuse(n.id, "invitation-used");
        changed = true;
      }
    }
    // Rules 3 and 4: removals, most senior remover first.
    const now = replay(nodes.filter((m) => !refused.has(m.id)));
    const seniority = (n: LogNode) => {
      const person = now.everOwner.get(n.op.author);
      return person === undefined
        ? Number.MAX_SAFE_INTEGER
        : (now.since.get(person) ?? Number.MAX_SAFE_INTEGER);
    };
    const removals = nodes
      .filter((n) => n.op.action.kind === "remove" && !refused.has(n.id))
      .sort((a, b) => seniority(a) - seniority(b) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    for (const r of removals) {
      if (refused.has(r.id)) continue;
      const action = r.op.action as Extract<MembershipAction, { kind: "remove" }>;
      const targets = action.device
        ? new Set([action.device])
        : new Set(now.everDevices.get(action.person) ?? []);
      for (const n of nodes) {
        if (n === r || refused.has(n.id) || r.ancestors.has(n.id)) continue;
        if (targets.has(n.op.author)) {
          refuse(n.id, "removed-concurrently");
          changed = true;
        } else if (!action.device && grants(n.op.action, action.person) && !n.ancestors.has(r.id)) {
          refuse(n.id, "concurrent-with-removal");
          changed = true;
        }
      }
    }
    if (!changed) break;
  }
  const counted = nodes.filter((n) => !refused.has(n.id));
  const state = replay(counted);
  const named = new Set(nodes.flatMap((n) => n.op.parents));
  const countedEpochs = new Set(state.rotations.map((r) => r.epoch));
  const cancelledRotations: Rotation[] = [];
  for (const n of nodes) {
    const a = n.op.action;
    const why = refused.get(n.id);
    if (a.kind !== "rotate" || (why !== "removed-concurrently" && why !== "concurrent-with-removal"))
      continue;
    if (countedEpochs.has(a.epoch) || cancelledRotations.some((r) => r.epoch === a.epoch)) continue;
    const keys = { ...a.keys };
    for (const [k, v] of Object.entries(state.orphanShares.get(a.epoch) ?? {})) keys[k] ??= v;
    cancelledRotations.push({ op: n.id, epoch: a.epoch, keys });
  }
  const root = counted.find((n) => n.op.action.kind === "create")?.op.action;
  const residency = root?.kind === "create" ? root.residency : undefined;
  return {
    ...(residency !== undefined && { residency }),
    epoch: state.rotations.at(-1)?.epoch ?? 0,
    rotations: state.rotations,
    cancelledRotations,
    keyNeeds: keyNeedsOf(counted, state.rotations, state.deviceOwner),
    invitations: state.invitations,
    readerCut: state.readerCut,
    everOwner: state.everOwner,
    names: state.names,
    members: state.members,
    deviceOwner: state.deviceOwner,
    removedDevices: state.removedDevices,
    order: counted.map((n) => n.id),
    refused,
    waiting,
    heads: nodes
      .map((n) => n.id)
      .filter((id) => !named.has(id))
      .sort(),
  };
}

/** `MembershipState.keyNeeds`, from the counted ops in the log's order. */
function keyNeedsOf(
  counted: readonly LogNode[],
  rotations: readonly Rotation[],
  deviceOwner: ReadonlyMap<string, string>,
): Map<number, string[]> {
  const addedBy = new Map<string, LogNode>();
  for (const n of counted) {
    const a = n.op.action;
    if ("device" in a && typeof a.device === "object" && !addedBy.has(a.device.device))
      addedBy.set(a.device.device, n);
  }
  const out = new Map<number, string[]>();
  for (const rotation of rotations) {
    // (A rotation's entry for the invitation a device redeemed is not taken as the device's copy: the
    // log cannot say whether the device still holds that invitation's secret, and one share too many
    // costs one operation.)
    const lacking = [...deviceOwner.keys()].filter((d) => {
      if (rotation.keys[d]) return false;
      const added = addedBy.get(d);
      return added !== undefined && !added.ancestors.has(rotation.op);
    });
    if (lacking.length > 0) out.set(rotation.epoch, lacking.sort());
  }
  return out;
}

/** Refusals that need no state: the log's root must be its creator's `create`, and only it. */
function structural(n: LogNode, creatorKey: string): RefusedOpReason | undefined {
  const { op } = n;
  if (op.action.kind === "create") {
    if (op.parents.length > 0) return "malformed";
    if (op.authorKey !== creatorKey) return "not-the-creator";
    const d = op.action.device;
    if (d.device !== op.author || d.signingKey !== op.authorKey) return "malformed";
    return undefined;
  }
  return op.parents.length === 0 ? "malformed" : undefined;
}

/** Whether an action grants something to `person` (a device, membership again, a role). */
function grants(a: MembershipAction, person: string): boolean {
  return (
    (a.kind === "add-person" || a.kind === "add-device" || a.kind === "set-role" || a.kind === "redeem") &&
    a.person === person
  );
}
