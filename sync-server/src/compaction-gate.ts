import { countedCompactions, opId, type MembershipOp } from "@shoal/client/protocol";
import type { Refusal } from "./commit-refusal.ts";
import type { MembershipView } from "./space-memberships.ts";
import { covers } from "./store/compact-rule.ts";
import type { CompactResult, IncomingCommit, RelayStore } from "./store/store.ts";

/** A counted `compact` operation of an upload, to carry out once its commit is stored. */
export interface Compaction {
  /** The commit that carries the operation. */
  commit: IncomingCommit;
  /** Device hex -> seq: what the store drops, up to. */
  vector: Map<string, number>;
}

/** What `compactionGate` decided about an upload's accepted commits. */
export interface CompactionVerdict {
  /** How many of the commits, from the first, may be stored. */
  accepted: number;
  /** The compactions among them that count (their author was an admin in their own causal past). */
  compactions: Compaction[];
  /** The first `compact` operation refused: no stored snapshot covers its vector. */
  refused?: Refusal;
}

/** The operation a membership commit carries when it is a `compact` one, else undefined. */
function compactOp(c: IncomingCommit): MembershipOp | undefined {
  if (c.membershipOp === undefined || !c.membershipOp.includes('"compact"')) return undefined;
  try {
    const op = JSON.parse(c.membershipOp) as MembershipOp;
    return op.action?.kind === "compact" ? op : undefined;
  } catch {
    return undefined; // the membership check refused it already
  }
}

/**
 * The relay's side of a `compact` membership operation (PROTOCOL.md 12, "Relay compaction"), for the
 * commits of an upload the membership log accepted. Whether the operation counts is decided as every
 * replica decides it (`countedCompactions`: its author was an admin in its own causal past, the
 * frame's earlier operations included); one that does not count is stored like any operation and
 * changes nothing. One that counts is refused (code `compaction`, naming its commit, so it and the
 * commits after it are not stored) unless the space's stored snapshot covers its vector: the
 * snapshot is what a fresh device starts from once the commits below that vector are gone, so the
 * commits never go first. The compactions returned are carried out after the append (`runCompactions`).
 *
 * @example
 * const gate = await compactionGate(store, space, view, incoming);
 * const result = await store.append(space, incoming.slice(0, gate.accepted), options);
 * await runCompactions(store, space, gate.compactions, result.stored);
 */
export async function compactionGate(
  store: RelayStore,
  space: string,
  view: MembershipView,
  commits: readonly IncomingCommit[],
): Promise<CompactionVerdict> {
  const compactions: Compaction[] = [];
  if (!view.creator || !commits.some((c) => compactOp(c) !== undefined))
    return { accepted: commits.length, compactions };
  const ops = new Map(view.ops);
  let snapshot: Map<string, number> | null | undefined;
  for (let i = 0; i < commits.length; i++) {
    const c = commits[i]!;
    if (c.membershipOp === undefined) continue;
    let op: MembershipOp;
    try {
      op = JSON.parse(c.membershipOp) as MembershipOp;
    } catch {
      continue;
    }
    const id = await opId(op);
    ops.set(id, op);
    if (op.action?.kind !== "compact") continue;
    if (!countedCompactions(ops, view.creator).includes(id)) continue;
    const vector = new Map(Object.entries(op.action.vector));
    if (snapshot === undefined) snapshot = (await store.getSnapshot(space))?.vector ?? null;
    if (!snapshot || !covers(snapshot, vector))
      return {
        accepted: i,
        compactions,
        refused: {
          metric: "compaction",
          code: "compaction",
          message:
            "The relay holds no snapshot covering this compaction's vector: upload the snapshot first (snapshot-put), then the compact operation.",
          device: c.device,
          seq: c.seq,
        },
      };
    compactions.push({ commit: c, vector });
  }
  return { accepted: commits.length, compactions };
}

/**
 * Carries out the compactions whose commits the store newly stored (a duplicate was carried out when
 * it was first stored), in order, and returns what each freed.
 */
export async function runCompactions(
  store: RelayStore,
  space: string,
  compactions: readonly Compaction[],
  stored: readonly IncomingCommit[],
): Promise<CompactResult[]> {
  const fresh = new Set(stored);
  const out: CompactResult[] = [];
  for (const c of compactions) if (fresh.has(c.commit)) out.push(await store.compact(space, c.vector));
  return out;
}
