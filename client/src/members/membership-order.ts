import type { MembershipOp } from "./membership-op.ts";

/** An operation of the log at its place in the log's order, with every op in its causal past. */
export interface LogNode {
  id: string;
  op: MembershipOp;
  ancestors: Set<string>;
  index: number;
}

/** Topological order, smallest id first among the ready; ops with a missing ancestor wait. */
export function order(ops: ReadonlyMap<string, MembershipOp>): { nodes: LogNode[]; waiting: string[] } {
  const children = new Map<string, string[]>();
  const missing = new Map<string, number>();
  for (const [id, op] of ops) {
    const parents = [...new Set(op.parents)];
    missing.set(id, parents.length);
    for (const p of parents) children.set(p, [...(children.get(p) ?? []), id]);
  }
  const ready = [...ops.keys()].filter((id) => missing.get(id) === 0).sort();
  const nodes: LogNode[] = [];
  const byId = new Map<string, LogNode>();
  while (ready.length > 0) {
    const id = ready.shift()!;
    const op = ops.get(id)!;
    const ancestors = new Set<string>();
    for (const p of op.parents) {
      ancestors.add(p);
      for (const a of byId.get(p)!.ancestors) ancestors.add(a);
    }
    const node = { id, op, ancestors, index: nodes.length };
    nodes.push(node);
    byId.set(id, node);
    for (const c of children.get(id) ?? []) {
      const left = missing.get(c)! - 1;
      missing.set(c, left);
      if (left === 0) {
        // Keep `ready` sorted: the order must not depend on arrival.
        const at = ready.findIndex((x) => x > c);
        ready.splice(at < 0 ? ready.length : at, 0, c);
      }
    }
  }
  const waiting = [...ops.keys()].filter((id) => !byId.has(id)).sort();
  return { nodes, waiting };
}
