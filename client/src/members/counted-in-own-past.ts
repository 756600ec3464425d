import type { MembershipOp } from "./membership-op.ts";
import { order } from "./membership-order.ts";
import { resolveMembership } from "./resolve-membership.ts";

/** Verdicts of erase and compact ops, by creator key and op id: fixed once the op's causal past is held. */
const ownPastVerdicts = new Map<string, boolean>();

/**
 * The ids of the `erase` operations of `ops` that count, each judged in its own causal past only (the
 * op and its ancestors resolved as a log of their own): an erase cannot be undone, so its verdict must
 * never change as more operations arrive. A removal of its author concurrent with it (rule 3) does
 * not cancel it, unlike other operations; an erase whose author was not an admin in its own past
 * never counts. Ops still waiting for their causal past are left out (they are judged once it is here).
 *
 * @example
 * const erases = countedErasures(ops, creatorKey); // ["3fa1...", ...]
 */
export function countedErasures(ops: ReadonlyMap<string, MembershipOp>, creatorKey: string): string[] {
  return countedInOwnPast(ops, creatorKey, "erase");
}

/**
 * The ids of the `compact` operations of `ops` that count, judged like erasures (`countedErasures`):
 * in their own causal past only, since the commits a compaction dropped cannot come back either.
 *
 * @example
 * const compactions = countedCompactions(ops, creatorKey); // ["9c02...", ...]
 */
export function countedCompactions(ops: ReadonlyMap<string, MembershipOp>, creatorKey: string): string[] {
  return countedInOwnPast(ops, creatorKey, "compact");
}

function countedInOwnPast(
  ops: ReadonlyMap<string, MembershipOp>,
  creatorKey: string,
  kind: "erase" | "compact",
): string[] {
  const out: string[] = [];
  const { nodes } = order(ops);
  for (const n of nodes) {
    if (n.op.action.kind !== kind) continue;
    const key = `${creatorKey}|${n.id}`;
    let counts = ownPastVerdicts.get(key);
    if (counts === undefined) {
      const past = new Map<string, MembershipOp>();
      for (const a of n.ancestors) past.set(a, ops.get(a)!);
      past.set(n.id, n.op);
      counts = !resolveMembership(past, creatorKey).refused.has(n.id);
      ownPastVerdicts.set(key, counts);
    }
    if (counts) out.push(n.id);
  }
  return out;
}
