import type { MembershipOp } from "../../src/members/membership-op.ts";
import { opId } from "../../src/members/membership-op.ts";
import { mayWrite } from "../../src/members/may-write.ts";
import { resolveMembership, type MembershipState } from "../../src/members/resolve-membership.ts";
import type { StoredCommit } from "../../src/replica/commit.ts";
import type { QuarantineRow, SpaceRow } from "../../src/replica/stored-rows.ts";
import { creatorKeyOf, readMembership } from "../../src/spaces/membership-log.ts";
import { enforceMembership } from "../../src/sealing/enforce-membership.ts";
import { SpaceSealer } from "../../src/sealing/sealer.ts";
import type { SpaceId } from "../../src/types.ts";
import type { InProcessRelay } from "../../../sync-server/src/testing/in-process-relay.ts";
import { waitFor } from "../wait-for.ts";
import { logOf, type MemberReplica } from "./membership-scenario.ts";

/** A unique text a record was inserted with, and the key epoch its inserting commit was sealed under. */
export interface Canary {
  token: string;
  epoch: number;
  writer: string;
}

/** Notes of an insert: the canary sits past where the fuzzer's text edits splice (positions 0 to 5). */
export const canaryNotes = (token: string): string => `note: ${token}`;

/** Records the epoch of the commit that inserted `record` on `db` (its first commit naming it). */
export async function canaryOf(
  db: MemberReplica["db"],
  space: SpaceId,
  record: string,
  token: string,
): Promise<Canary> {
  const commits = (
    await db.replica.dexie.table<StoredCommit>("_commits").where("records").equals(record).toArray()
  )
    .filter((c) => c.space === space && c.device === db.deviceId)
    .sort((a, b) => a.seq - b.seq);
  return { token, epoch: commits[0]?.epoch ?? 0, writer: db.deviceId };
}

/** The membership state the replicas that are members compare, as comparable JSON. */
function comparable(s: MembershipState | undefined, outcome = false): string {
  if (!s) return "no log";
  const members = [...s.members.values()]
    .map((m) => ({ person: m.person, role: m.role, devices: m.devices.map((d) => d.device).sort() }))
    .sort((a, b) => (a.person < b.person ? -1 : 1));
  const result = { members, removedDevices: [...s.removedDevices].sort(), epoch: s.epoch };
  return JSON.stringify(outcome ? result : { ...result, order: s.order, refused: [...s.refused].sort() });
}

/** The replicas that are members as `state` says (by their device). */
export function membersIn<R extends MemberReplica>(
  state: MembershipState | undefined,
  replicas: readonly R[],
): R[] {
  return replicas.filter((r) => state?.deviceOwner.has(r.db.deviceId));
}

/**
 * Members that can never read some epoch: their own log counts a rotation whose key they do not hold.
 * A KNOWN OPEN BUG (docs/RELIABILITY.md, "Membership mode"): a rotation concurrent with an invitation
 * is sealed neither to the invitation nor to the device that redeems it, and nothing seals it to that
 * member later; what is written under it never opens there, and the writers' later commits wait
 * behind those forever. The driver leaves such replicas out of every check and counts them.
 */
export async function keyGapsIn<R extends MemberReplica>(
  replicas: readonly R[],
  space: SpaceId,
): Promise<Set<R>> {
  const out = new Set<R>();
  for (const r of replicas) {
    const [state, row] = await Promise.all([
      readMembership(r.db.replica.dexie, space),
      r.db.replica.dexie.table<SpaceRow>("_spaces").get(space),
    ]);
    if (state?.rotations.some((rot) => row?.epochKeys?.[rot.epoch] === undefined)) out.add(r);
  }
  return out;
}

/** What each replica of `gapped` lacks (`keyGapsIn`): the epochs, who rotated them, and why. */
export async function keyGapFailures<R extends MemberReplica>(
  gapped: readonly R[],
  space: SpaceId,
): Promise<string[]> {
  const out: string[] = [];
  for (const r of gapped) {
    const [state, row] = await Promise.all([
      readMembership(r.db.replica.dexie, space),
      r.db.replica.dexie.table<SpaceRow>("_spaces").get(space),
    ]);
    const lacking = (state?.rotations ?? []).filter((rot) => row?.epochKeys?.[rot.epoch] === undefined);
    const held = Object.keys(row?.epochKeys ?? {}).join(",");
    out.push(
      `${r.name} (${r.db.deviceId.slice(0, 8)}) can never read epochs ${lacking.map((rot) => `${rot.epoch} (rotated by ${JSON.stringify(rot).slice(0, 160)})`).join("; ")}; it holds keys of epochs ${held || "none"}`,
    );
  }
  return out;
}

/**
 * Member replicas holding own data commits `state` refuses: a writer demoted to reader that wrote
 * before it learned. The relay and every other replica refuse those commits, so they stay pending on
 * it forever (its own vector entry is ahead of everyone's); once it learned, it took them out of its
 * records too (`enforceMembership`, quarantined there for membership). The record comparison leaves
 * such a replica out for its vector.
 */
export async function strandedIn<R extends MemberReplica>(
  state: MembershipState | undefined,
  replicas: readonly R[],
  space: SpaceId,
): Promise<R[]> {
  const out: R[] = [];
  for (const r of replicas) {
    const own = (await r.db.replica.dexie.table<StoredCommit>("_commits").toArray()).filter(
      (c) => c.space === space && c.device === r.db.deviceId && c.membership === undefined,
    );
    const refused = (
      await r.db.replica.dexie
        .table<QuarantineRow>("_quarantine")
        .where("[space+device+seq]")
        .between([space, r.db.deviceId, 0], [space, r.db.deviceId, Number.MAX_SAFE_INTEGER])
        .toArray()
    ).some((q) => q.reason === "membership");
    if (refused || own.some((c) => mayWrite(state, c.device, c.seq) !== undefined)) out.push(r);
  }
  return out;
}

/**
 * The membership invariants of issue 13, checked after healing on `members` (the replicas that are
 * members by the final state, which replica 0 gives: the creator stays an admin in every scenario)
 * and `removed` (replicas whose device that state lists as removed). Returns what broke.
 *
 * 1. Every member, and the relay, computes the same members, roles, devices, removed devices, epoch,
 *    log order and refused ops.
 * 2. No member holds (applied) a data commit the final state refuses (a removed device beyond its
 *    cut, a reader beyond its demotion cut, a non-member), whatever the order things arrived in: one
 *    applied before the removal or demotion that refuses it arrived is taken out when it does
 *    (`enforceMembership`). Each it quarantined for that says `membership`, none it quarantined for
 *    membership is allowed by the final state, and every member quarantined the same commits.
 * 3. A removed replica holds no key of an epoch rotated after its removal, and no record inserted
 *    under such an epoch appears anywhere in its database (canaries); once its own log holds its
 *    removal, it sees itself removed and refuses its own writes.
 */
export async function membershipFailures(args: {
  space: SpaceId;
  relay: InProcessRelay;
  members: readonly MemberReplica[];
  removed: readonly MemberReplica[];
  canaries: readonly Canary[];
  /** Members holding own commits the membership refuses (`strandedIn`): those are theirs alone. */
  stranded: ReadonlySet<MemberReplica>;
}): Promise<string[]> {
  const { space, relay, members, removed, canaries, stranded } = args;
  const failures: string[] = [];
  const states = await Promise.all(members.map((r) => readMembership(r.db.replica.dexie, space)));
  const final = states[0];
  const base = comparable(final);
  states.forEach((s, i) => {
    if (comparable(s) !== base)
      failures.push(
        `${members[i]!.name} computes another membership than ${members[0]!.name}: ${comparable(s)} vs ${base}`,
      );
  });
  // The relay may hold more ops than the members: those of a removed device beyond its cut, behind
  // its commits no member opens (refused there either way). The outcome must be the same.
  const relayState = await relayMembership(relay, space, members[0]!);
  if (comparable(relayState, true) !== comparable(final, true))
    failures.push(
      `the relay computes another membership: ${comparable(relayState, true)} vs ${comparable(final, true)}`,
    );

  const quarantines = new Map<MemberReplica, string>();
  // What each quarantined, for a failure message.
  const held = new Map<MemberReplica, string[]>();
  const ops = new Map<string, MembershipOp>();
  for (const op of await logOf(members[0]!.db)) if (op.space === space) ops.set(await opId(op), op);
  for (const r of members) {
    const dexie = r.db.replica.dexie;
    const commits = (await dexie.table<StoredCommit>("_commits").toArray()).filter((c) => c.space === space);
    for (const c of commits) {
      if (c.membership !== undefined || (stranded.has(r) && c.device === r.db.deviceId)) continue;
      const why = mayWrite(final, c.device, c.seq);
      if (!why) continue;
      const when = (await allowedWhenApplied(r, space, commits, c)) ? "allowed" : "refused";
      failures.push(
        `${r.name} applied ${c.device.slice(0, 8)}#${c.seq}, which the membership refuses (${why}); the log it held then ${when} it`,
      );
    }
    const rows = (await dexie.table<QuarantineRow>("_quarantine").toArray()).filter((q) => q.space === space);
    for (const q of rows) {
      const why = mayWrite(final, q.device, q.seq);
      if (why && q.reason !== "membership" && q.reason !== "dependency")
        failures.push(
          `${r.name} quarantined ${q.device.slice(0, 8)}#${q.seq} (refused: ${why}) as ${q.reason}`,
        );
      if (!why && q.reason === "membership") {
        const cuts = cutsOf(final, q.device, ops).join(", ");
        failures.push(
          `${r.name} quarantined ${q.device.slice(0, 8)}#${q.seq} for membership, which the final membership allows (cuts: ${cuts}; ${await whyStillOut(r, space, q)})`,
        );
      }
    }
    if (!stranded.has(r)) quarantines.set(r, JSON.stringify(rows.map((q) => q.id).sort()));
    held.set(r, rows.map((q) => `${q.device.slice(0, 8)}#${q.seq} ${q.reason}: ${q.message}`).sort());
  }
  const same = [...quarantines];
  for (const [r, ids] of same)
    if (ids !== same[0]![1])
      failures.push(
        `${r.name} quarantined other commits than ${same[0]![0].name}: [${held.get(r)!.join("; ")}] vs [${held.get(same[0]![0])!.join("; ")}]`,
      );

  if (final) failures.push(...(await removedFailures(space, final, members[0]!, removed, canaries)));
  return failures;
}

/**
 * For a failure message: why a quarantined commit the membership allows was not brought back here:
 * its sealed bytes, whether they open, what waits in `_pending`, and whether enforcing the log now
 * would bring it back (a restore that nothing triggered, or one that cannot happen).
 */
async function whyStillOut(r: MemberReplica, space: SpaceId, q: QuarantineRow): Promise<string> {
  const dexie = r.db.replica.dexie;
  const row = await dexie.table<SpaceRow>("_spaces").get(space);
  if (!row) return "no space row";
  const sealer = new SpaceSealer(dexie, space, row.key);
  const kept = await sealer.kept(q.device, q.seq);
  let opens = "not kept";
  if (kept)
    opens = await sealer.open(kept.bytes).then(
      () => "opens",
      (e: unknown) => `does not open: ${(e as Error).message.slice(0, 120)}`,
    );
  const pending = await dexie.table("_pending").count();
  const again = await enforceMembership(r.db.replica, space);
  const restored = again?.restored.includes(q.id as never)
    ? "restored when enforced again"
    : `enforced again: ${again ? "rebuilt without it" : "nothing (or a commit waits)"}`;
  return `${opens}, ${pending} parked, ${restored}`;
}

/** The cuts the counted removals and demotions of `final` record for `device`. */
function cutsOf(
  final: MembershipState | undefined,
  device: string,
  ops: ReadonlyMap<string, MembershipOp>,
): number[] {
  const person = final?.everOwner.get(device);
  const cuts: number[] = [];
  for (const id of final?.order ?? []) {
    const a = ops.get(id)?.action;
    const mine =
      a?.kind === "remove" ? a.device === device || (a.device === undefined && a.person === person) : false;
    if (a?.kind === "remove" && mine) cuts.push(a.cut[device] ?? 0);
    if (a?.kind === "set-role" && a.role === "reader" && a.person === person) cuts.push(a.cut?.[device] ?? 0);
  }
  return cuts;
}

/**
 * Whether the membership operations `r` held when it applied data commit `c` (those whose membership
 * commits came before it in `r`'s causal order, `pos`) allowed it.
 */
async function allowedWhenApplied(
  r: MemberReplica,
  space: SpaceId,
  commits: readonly StoredCommit[],
  c: StoredCommit,
): Promise<boolean> {
  const earlier = commits.filter((m) => m.membership !== undefined && (m.pos ?? 0) < (c.pos ?? 0));
  const ops = new Map(earlier.map((m) => [m.membershipId!, JSON.parse(m.membership!) as MembershipOp]));
  const row = await r.db.replica.dexie.table<SpaceRow>("_spaces").get(space);
  const then = resolveMembership(ops, creatorKeyOf(row)!);
  return mayWrite(then, c.device, c.seq) === undefined;
}

/** The relay's own view: its stored membership operations, resolved with the space's creator key. */
async function relayMembership(relay: InProcessRelay, space: SpaceId, any: MemberReplica) {
  const row = await any.db.replica.dexie.table<SpaceRow>("_spaces").get(space);
  const ops = new Map<string, MembershipOp>();
  for (const text of await relay.store.membershipOps(space)) {
    const op = JSON.parse(text) as MembershipOp;
    ops.set(await opId(op), op);
  }
  return resolveMembership(ops, creatorKeyOf(row)!);
}

/** Check 3 of `membershipFailures`. */
async function removedFailures(
  space: SpaceId,
  final: MembershipState,
  admin: MemberReplica,
  removed: readonly MemberReplica[],
  canaries: readonly Canary[],
): Promise<string[]> {
  const failures: string[] = [];
  if (removed.length === 0) return failures;
  const ops = new Map<string, MembershipOp>();
  for (const op of await logOf(admin.db)) if (op.space === space) ops.set(await opId(op), op);
  const ancestors = ancestryOf(ops);
  for (const r of removed) {
    const device = r.db.deviceId;
    // Its counted removals, and the rotations made by someone who knew of one of them.
    const removals = final.order.filter((id) => {
      const a = ops.get(id)?.action;
      return (
        a?.kind === "remove" &&
        (a.device === device || (a.device === undefined && final.everOwner.get(device) === a.person))
      );
    });
    const after = new Set(
      final.rotations
        .filter((rot) => removals.some((id) => ancestors.get(rot.op)?.has(id)))
        .map((rot) => rot.epoch),
    );
    const row = await r.db.replica.dexie.table<SpaceRow>("_spaces").get(space);
    for (const e of Object.keys(row?.epochKeys ?? {}))
      if (after.has(Number(e)))
        failures.push(`${r.name} (removed) holds the key of epoch ${e}, rotated after its removal`);
    const secret = canaries.filter((c) => after.has(c.epoch) && c.writer !== device).map((c) => c.token);
    if (secret.length > 0) {
      const held = await everything(r);
      for (const token of secret)
        if (held.includes(token))
          failures.push(`${r.name} (removed) holds ${token}, written under a newer epoch`);
    }
    // The relay turns it away once it knows, so whether it ever heard of its removal is timing; once
    // its own log says so, its writes are refused. (It may still be applying its last batch: nothing
    // waited for it to settle, so this waits for the row, bounded.)
    const own = await readMembership(r.db.replica.dexie, space);
    if (own?.removedDevices.has(device) && !own.deviceOwner.has(device)) {
      const rowOf = () => r.db.replica.dexie.table<SpaceRow>("_spaces").get(space);
      await waitFor(r.db.live(rowOf), (x) => x?.readOnly === "removed", 10_000, "read-only").catch(async () =>
        failures.push(
          `${r.name} sees itself removed but its space is not read-only (${(await rowOf())?.readOnly})`,
        ),
      );
    }
  }
  return failures;
}

/** Every op id -> the ids of its causal past (by `parents`). */
function ancestryOf(ops: ReadonlyMap<string, MembershipOp>): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  const visit = (id: string): Set<string> => {
    const known = out.get(id);
    if (known) return known;
    const mine = new Set<string>();
    out.set(id, mine);
    for (const p of ops.get(id)?.parents ?? []) {
      mine.add(p);
      for (const q of visit(p)) mine.add(q);
    }
    return mine;
  };
  for (const id of ops.keys()) visit(id);
  return out;
}

/** Every row of every table of a replica's database, as text (bytes decoded, so plaintext shows). */
async function everything(r: MemberReplica): Promise<string> {
  const parts: string[] = [];
  const decoder = new TextDecoder();
  for (const t of r.db.replica.dexie.tables)
    for (const row of await t.toArray())
      parts.push(JSON.stringify(row, (_k, v) => (v instanceof Uint8Array ? decoder.decode(v) : v)));
  return parts.join("\n");
}
