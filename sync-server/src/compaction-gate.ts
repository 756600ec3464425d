import { countedCompactions, opId, type MembershipOp } from "@shoal/client/protocol";
import type { MembershipView } from "./space-memberships.ts";
import type { CompactResult, IncomingCommit, RelayStore } from "./store/store.ts";

/** A counted `compact` operation of an upload, to carry out once its commit is stored. */
export interface Compaction {
  /** The commit that carries the operation. */
  commit: IncomingCommit;
  /** Device hex -> seq: the operation's vector (what the relay drops, up to, at most). */
  vector: Map<string, number>;
}

/** What `compactionGate` found among an upload's accepted commits. */
export interface CompactionVerdict {
  /** The compactions among them that count (their author was an admin in their own causal past). */
  compactions: Compaction[];
}

/** Whether a membership commit may carry a `compact` operation (a cheap look before parsing). */
function mayCompact(c: IncomingCommit): boolean {
  return c.membershipOp !== undefined && c.membershipOp.includes('"compact"');
}

/**
 * The relay's side of a `compact` membership operation (PROTOCOL.md 12, "Relay compaction"), for the
 * commits of an upload the membership log accepted: which of them count, decided as every replica
 * decides it (`countedCompactions`: its author was an admin in its own causal past, the frame's earlier
 * operations included). Every one of them is stored, counted or not: a refusal would stop every later
 * commit of its author for good whenever the relay's snapshot does not cover the vector (another
 * admin's compaction or a restored data directory put another one there), and the relay cannot undo
 * that. What a counted one drops is decided after the append, against the snapshot then stored
 * (`runCompactions`).
 *
 * @example
 * const gate = await compactionGate(view, incoming);
 * const result = await store.append(space, incoming, options);
 * await runCompactions(store, space, gate.compactions, result.stored);
 */
export async function compactionGate(
  view: MembershipView,
  commits: readonly IncomingCommit[],
): Promise<CompactionVerdict> {
  const compactions: Compaction[] = [];
  if (!view.creator || !commits.some(mayCompact)) return { compactions };
  const ops = new Map(view.ops);
  for (const c of commits) {
    if (c.membershipOp === undefined) continue;
    let op: MembershipOp;
    try {
      op = JSON.parse(c.membershipOp) as MembershipOp;
    } catch {
      continue; // the membership check refused it already
    }
    const id = await opId(op);
    ops.set(id, op);
    if (op.action?.kind !== "compact") continue;
    if (!countedCompactions(ops, view.creator).includes(id)) continue;
    compactions.push({ commit: c, vector: new Map(Object.entries(op.action.vector)) });
  }
  return { compactions };
}

/**
 * The part of a compaction's `vector` the relay may drop: per device, the lower of its entry and the
 * stored snapshot's (absent = 0; devices at 0 left out). The snapshot is where a fresh device starts,
 * so the relay never drops a commit it does not cover; a commit between this floor and the snapshot
 * is served after it and re-applied as a duplicate. Empty when there is no snapshot.
 */
export function safeFloor(
  vector: ReadonlyMap<string, number>,
  snapshot: ReadonlyMap<string, number> | undefined,
): Map<string, number> {
  const out = new Map<string, number>();
  if (!snapshot) return out;
  for (const [device, seq] of vector) {
    const upTo = Math.min(seq, snapshot.get(device) ?? 0);
    if (upTo > 0) out.set(device, upTo);
  }
  return out;
}

/**
 * Carries out the compactions whose commits the store newly stored (a duplicate was carried out when
 * it was first stored), in order, each up to its `safeFloor` against the snapshot stored now (a
 * snapshot is only ever replaced by one that dominates it, PROTOCOL.md 6, so the floor stays covered),
 * and returns what each freed. One with an empty floor (no snapshot) drops nothing.
 */
export async function runCompactions(
  store: RelayStore,
  space: string,
  compactions: readonly Compaction[],
  stored: readonly IncomingCommit[],
): Promise<CompactResult[]> {
  const fresh = new Set(stored);
  const out: CompactResult[] = [];
  for (const c of compactions) {
    if (!fresh.has(c.commit)) continue;
    const floor = safeFloor(c.vector, (await store.getSnapshot(space))?.vector);
    if (floor.size > 0) out.push(await store.compact(space, floor));
  }
  return out;
}
