import type { MembershipOp } from "../members/membership-op.ts";
import { mayWrite } from "../members/may-write.ts";
import type { MembershipState } from "../members/membership-state.ts";
import { membershipRefusal } from "../replica/admit-by-membership.ts";
import type { Commit, StoredCommit } from "../replica/commit.ts";
import { rebuildRecords, type RebuildReport } from "../replica/rebuild-records.ts";
import type { Replica } from "../replica/replica.ts";
import type { MemberRow, QuarantineRow, SpaceRow, VectorRow } from "../replica/stored-rows.ts";
import type { ErasedRow } from "../replica/erased.ts";
import { validateCommit } from "../replica/validate-commit.ts";
import { SpaceSealer } from "./sealer.ts";
import type { SpaceId } from "../types.ts";
import { stateOf } from "../spaces/membership-log.ts";

/**
 * Makes what this replica applied in a space agree with the space's membership log as it is now, so
 * the outcome of a removal or a demotion does not depend on the order in which things arrived
 * (PROTOCOL.md 10, "Who may write"). Commits are judged when they arrive, against the log held then;
 * an operation arriving later can change that verdict both ways:
 *
 * - a removal or demotion whose cut lies below commits already applied here (they came over a path the
 *   operation had not taken yet): those commits are taken out, and every record they touched rebuilt
 *   without them (with whatever depended on them, as a replica that refused them on arrival did);
 * - an operation that allows commits quarantined for membership here (a second removal with a higher
 *   cut, the cancelled removal of a senior admin, a reader made writer again within its cut): they are
 *   opened again from their kept sealed bytes and applied, with their dependents.
 *
 * A device that the log lists as not a member loses its applied commits only if the log names it at
 * all (a redemption that lost to a concurrent one) and no operation waits for its causal past (one may
 * add it); devices of the space from before it had members are left alone. A removed device keeps its
 * own commits on itself. Runs under the replica's lock; does nothing (cheaply) when nothing changes.
 * The database installs it as the replica's `onMembership` (it opens sealed commits, which the replica
 * layer does not reach).
 *
 * @example
 * replica.onMembership = (space) => enforceMembership(replica, space);
 */
export async function enforceMembership(replica: Replica, space: SpaceId): Promise<RebuildReport | null> {
  const release = await replica.lock.acquire();
  try {
    if (replica.closed) return null;
    await replica.drain();
    const { dexie, device: me } = replica;
    const row = await dexie.table<SpaceRow>("_spaces").get(space);
    const ops = await dexie.table<MemberRow>("_members").where("space").equals(space).toArray();
    const state = stateOf(row, ops);
    if (!row || !state) return null;

    const named = state.waiting.length > 0 ? new Set<string>() : devicesNamed(ops);
    const drop: StoredCommit[] = [];
    const vectors = await dexie.table<VectorRow>("_vectors").where("space").equals(space).toArray();
    for (const v of vectors) {
      if (mayWrite(state, v.device, v.seq) === undefined) continue;
      if (v.device === me && state.removedDevices.has(me)) continue;
      const upTo = lastAllowed(state, v.device, named);
      if (upTo >= v.seq) continue;
      const beyond = await dexie
        .table<StoredCommit>("_commits")
        .where("[space+device+seq]")
        .between([space, v.device, upTo + 1], [space, v.device, Number.MAX_SAFE_INTEGER], true, true)
        .toArray();
      drop.push(...beyond.filter((c) => c.membership === undefined));
    }

    const quarantined = await dexie
      .table<QuarantineRow>("_quarantine")
      .where("space")
      .equals(space)
      .toArray();
    const allowed = quarantined.filter(
      (q) => q.reason === "membership" && mayWrite(state, q.device, q.seq) === undefined,
    );
    // A commit refused for `dependency` that also changes a record erased since: the dependency may
    // have been the erased record's alone, and a device that received the commit after the erase
    // stripped that record and applied the rest. Tried again with it stripped, so both end alike (the
    // case left open by soak seeds 90011 and 91015); one whose records are all erased comes back as
    // an empty commit, which the other device holds in its log too (soak seed 100091).
    const erased = new Set(
      (await dexie.table<ErasedRow, string>("_erased").where("space").equals(space).primaryKeys()) as string[],
    );
    const moot = quarantined.filter((q) => q.reason === "dependency" && q.records.some((r) => erased.has(r)));
    if (drop.length === 0 && allowed.length === 0 && moot.length === 0) {
      replica.membershipRetry.delete(space);
      return null;
    }

    const sealer = new SpaceSealer(dexie, space, row.key);
    // What depended on a commit coming back may come back with it: its dependents are tried too.
    const candidates =
      allowed.length === 0 && moot.length === 0
        ? []
        : [...allowed, ...quarantined.filter((q) => q.reason === "dependency")];
    const add: Commit[] = [];
    for (const q of candidates) {
      const kept = await sealer.kept(q.device, q.seq);
      if (!kept) continue; // quarantined from plaintext (no sealed bytes here): it stays out
      try {
        const { commit } = await sealer.open(kept.bytes);
        validateCommit(commit);
        add.push(commit);
      } catch {
        // A key this device lacks now, or content refused anyway: it stays quarantined.
      }
    }
    if (drop.length === 0 && add.length === 0) return null;
    // This device's own commits that leave the log (refused, or built on a refused one) stay its
    // chain, sealed from the log on upload: seal them all first, while they are still in it. A rebuild
    // that only brings commits back can take some out too (a restored commit that fails again, and
    // what built on it).
    await sealOwn(replica, sealer, space);

    const report = await rebuildRecords(replica, space, drop, add, (c) => ({
      reason: "membership",
      message: membershipRefusal(c, mayWrite(state, c.device, c.seq) ?? "not-a-member"),
    }));
    for (const id of report?.records ?? []) replica.cache.delete(id);
    // A commit to bring back that waits for another one not here yet (it builds on a change of a
    // commit still on its way) keeps the whole rebuild from happening: try again once more commits
    // of the space applied (membership soak seed 70242).
    if (report === null && add.length > 0) replica.membershipRetry.add(space);
    else replica.membershipRetry.delete(space);
    return report;
  } finally {
    release();
  }
}

/** The highest sequence of `device`'s data commits the log lets count (`MAX_SAFE_INTEGER`: all). */
function lastAllowed(state: MembershipState, device: string, named: ReadonlySet<string>): number {
  const person = state.deviceOwner.get(device);
  if (person !== undefined)
    return state.members.get(person)!.role === "reader"
      ? (state.readerCut.get(device) ?? 0)
      : Number.MAX_SAFE_INTEGER;
  const cut = state.removedDevices.get(device);
  if (cut !== undefined) return cut;
  return named.has(device) ? 0 : Number.MAX_SAFE_INTEGER;
}

/** Every device some operation of the log adds (counted or not). */
function devicesNamed(rows: readonly MemberRow[]): Set<string> {
  const out = new Set<string>();
  for (const r of rows) {
    const a = (JSON.parse(r.op) as MembershipOp).action;
    if ("device" in a && typeof a.device === "object") out.add(a.device.device);
  }
  return out;
}

/** Seals every commit of this device in the space that the relay has not acknowledged and is not sealed. */
async function sealOwn(replica: Replica, sealer: SpaceSealer, space: SpaceId): Promise<void> {
  const { dexie, device: me } = replica;
  const acked = (await dexie.table<{ seq: number }>("_acks").get([space, me]))?.seq ?? 0;
  const own = await dexie
    .table<StoredCommit>("_commits")
    .where("[space+device+seq]")
    .between([space, me, acked + 1], [space, me, Number.MAX_SAFE_INTEGER], true, true)
    .toArray();
  // In order, so each one's predecessor is sealed when it is (its chain hash).
  for (const c of own) if (!(await sealer.kept(me, c.seq))) await sealer.sealedRange(me, c.seq, c.seq);
}
