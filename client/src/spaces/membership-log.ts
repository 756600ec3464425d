import type { Dexie } from "dexie";
import { NotPermitted, UnsignedDevice, ValidationError } from "../errors.ts";
import {
  canonicalJson,
  opId,
  signOp,
  type DeviceKeys,
  type MembershipAction,
  type MembershipOp,
} from "../members/membership-op.ts";
import { resolveMembership, type MembershipState, type Rotation } from "../members/resolve-membership.ts";
import { mayWrite } from "../members/may-write.ts";
import { openKeySet, openName, sealKeySet, type KeySet } from "../members/key-set.ts";
import { identityFromSeed } from "../identity/identity-from-seed.ts";
import { fromHex, toHex } from "../protocol/hex.ts";
import { keySetOf } from "./member-keys.ts";
import { applyErasures } from "./erase-record.ts";
import { applyCompactions } from "./apply-compactions.ts";
import { commitId, type StoredCommit } from "../replica/commit.ts";
import type { Replica } from "../replica/replica.ts";
import type { MemberRow, SpaceRow, VectorRow } from "../replica/stored-rows.ts";
import type { DeviceId, SpaceId } from "../types.ts";

/** The space's creator key (hex), from its claim; undefined for a space without one (it has no log). */
export function creatorKeyOf(row: Pick<SpaceRow, "claim"> | undefined): string | undefined {
  return row?.claim ? toHex(row.claim.subarray(0, 32)) : undefined;
}

/** Ops by id from `_members` rows (verified before they were stored). */
export function opsOf(rows: readonly MemberRow[]): Map<string, MembershipOp> {
  return new Map(rows.map((r) => [r.id, JSON.parse(r.op) as MembershipOp]));
}

/**
 * The membership state of a space from its stored operations and any more (verified) ones, or
 * undefined when the space has no log (an open space: every key holder writes).
 */
export function stateOf(
  row: Pick<SpaceRow, "claim"> | undefined,
  rows: readonly MemberRow[],
  more: readonly MembershipOp[] = [],
  moreIds: readonly string[] = [],
): MembershipState | undefined {
  const creator = creatorKeyOf(row);
  if (!creator || rows.length + more.length === 0) return undefined;
  const ops = opsOf(rows);
  more.forEach((op, i) => ops.set(moreIds[i]!, op));
  const state = resolveMembership(ops, creator);
  return state.order.length > 0 ? state : undefined;
}

/** Reads a space's membership state (undefined: no log). */
export async function readMembership(dexie: Dexie, space: SpaceId): Promise<MembershipState | undefined> {
  const [row, rows] = await Promise.all([
    dexie.table<SpaceRow>("_spaces").get(space),
    dexie.table<MemberRow>("_members").where("space").equals(space).toArray(),
  ]);
  return stateOf(row, rows);
}

/**
 * Writes a membership operation by this device as its next commit in the space (a membership commit,
 * PROTOCOL.md 10), so it syncs like any commit. `parents` are the log's current heads. Returns the op
 * and its id. `extra` runs in the same transaction (a rotation stores its new key there).
 */
export async function appendMembershipOp(
  replica: Replica,
  space: SpaceId,
  action: MembershipAction,
  extra?: () => Promise<void>,
): Promise<{ op: MembershipOp; id: string; commit: StoredCommit }> {
  const identity = replica.identity;
  if (!identity) throw new UnsignedDevice();
  const release = await replica.lock.acquire();
  try {
    replica.assertOpen();
    await replica.drain();
    const { dexie } = replica;
    const state = await readMembership(dexie, space);
    const op = await signOp(identity, { space, parents: state?.heads ?? [], at: Date.now(), action });
    const id = await opId(op);
    // The one encoding every receiver checks (a membership commit's body must be canonical).
    const text = canonicalJson(op);
    const spacesT = dexie.table<SpaceRow>("_spaces");
    const commit = await dexie.transaction(
      "rw",
      [dexie.table("_vectors"), dexie.table("_commits"), dexie.table("_members"), spacesT],
      async () => {
        if (!(await spacesT.get(space))) throw new ValidationError(`Unknown space ${space}.`);
        const vec = await dexie.table<VectorRow>("_vectors").get([space, replica.device]);
        const seq = (vec?.seq ?? 0) + 1;
        const c: StoredCommit = {
          id: commitId(space, replica.device, seq),
          space,
          device: replica.device,
          seq,
          at: op.at,
          changes: [],
          membership: text,
          membershipId: id,
          records: [],
        };
        await dexie.table("_commits").add(c);
        await dexie.table("_vectors").put({ space, device: replica.device, seq });
        await dexie.table<MemberRow>("_members").put({ space, id, op: text });
        if (extra) await extra();
        return c;
      },
    );
    replica.emit([commit], "local");
    return { op, id, commit };
  } finally {
    release();
    // Outside the lock (it writes the space's row): names, keys and rights as this operation leaves them.
    // The invitation's secret stays a proof for the relay: it has not seen this operation yet (a
    // redemption just written here), and turns a device away that shows neither (fuzzer, members mode).
    await absorbMembership(replica, space, { keepInvitation: true }).catch(() => {});
    await replica.onMembership?.(space).catch(() => {});
  }
}

/**
 * After membership operations arrived: opens the key sets rotations and this device's invitation
 * sealed to it, keeps the keys it lacked, moves its sealing epoch to the newest key it holds, and
 * records whether it may write (so local writes are refused at once, `NotPermitted`). Returns whether
 * the row changed.
 */
export async function absorbMembership(
  replica: Replica,
  space: SpaceId,
  options: { keepInvitation?: boolean } = {},
): Promise<boolean> {
  const identity = replica.identity;
  const { dexie } = replica;
  const spacesT = dexie.table<SpaceRow>("_spaces");
  const row = await spacesT.get(space);
  const state = await readMembership(dexie, space);
  if (!row || !state || !identity) return false;
  const held: KeySet = keySetOf(row);
  const before = held.size;
  // The invitation this device redeemed: a rotation concurrent with the redemption (its admin had not
  // seen it yet) seals the new key to the still open invitation instead of to this device.
  const secret = row.invitation ?? row.redeemed;
  const invitation = secret && (await identityFromSeed(secret));
  const invitationKey = invitation && toHex(invitation.signingPublic);
  // Counted rotations first: a cancelled one never takes the label of a counted one from this device.
  for (const r of [...state.rotations, ...state.cancelledRotations]) {
    if (held.has(r.epoch)) continue;
    const own = r.keys[identity.device];
    const viaInvitation = invitationKey === undefined ? undefined : r.keys[invitationKey];
    const [sealed, opener] = own
      ? [own, identity]
      : viaInvitation && invitation
        ? [viaInvitation, invitation]
        : [undefined, undefined];
    if (!sealed || !opener) continue;
    try {
      for (const [e, k] of await openKeySet(sealed, opener.agreementKey, opener.agreementPublic))
        held.set(e, k);
    } catch {
      // Sealed by a hostile admin to garbage: this device waits for another rotation or a share.
    }
  }
  // Erasures first: a record erased for good leaves this device before anything else happens here.
  await applyErasures(replica, space, held);
  // Then compactions: the sealed copies of what they cover go (after the erasures they may follow).
  await applyCompactions(replica, space);
  // The newest rotation (log order) whose key is held; commits are sealed under it from now on.
  const epoch = [...state.rotations].reverse().find((r) => held.has(r.epoch))?.epoch ?? 0;
  const refusal = mayWrite(state, identity.device, Number.MAX_SAFE_INTEGER);
  const member = state.deviceOwner.has(identity.device);
  const readOnly = refusal === undefined ? undefined : refusal;
  // People's names, opened here once (WebCrypto) and kept readable: history and the members view read
  // them inside live queries, where awaiting anything but IndexedDB stops the query observing.
  const names: Record<string, string> = { ...(row.names ?? {}) };
  let named = false;
  for (const [person, sealed] of state.names) {
    if (names[person] !== undefined) continue;
    const name = await openName(sealed, held, space);
    if (name === undefined) continue; // under a key this device does not hold (yet)
    names[person] = name;
    named = true;
  }
  const changed =
    held.size !== before ||
    named ||
    (row.epoch ?? 0) !== epoch ||
    row.readOnly !== readOnly ||
    (member && row.invitation !== undefined && !options.keepInvitation);
  if (!changed) {
    await shareMissingKeys(replica, space);
    return false;
  }
  const membersT = dexie.table<MemberRow>("_members");
  await dexie.transaction("rw", spacesT, membersT, async () => {
    const now = await spacesT.get(space);
    if (!now) return;
    const keys: Record<number, Uint8Array> = { ...(now.epochKeys ?? {}) };
    for (const [e, k] of held) if (e !== 0) keys[e] = k;
    // Decided again on the log as it is now: another absorb may have run since this one read it (the
    // opening of keys and names above awaits WebCrypto), and a stale verdict written last would undo
    // a newer one, e.g. leave a removed device writable (soak seed 91064).
    const latest = stateOf(now, await membersT.where("space").equals(space).toArray()) ?? state;
    const latestEpoch =
      [...latest.rotations].reverse().find((r) => keys[r.epoch] !== undefined || r.epoch === 0)?.epoch ?? 0;
    const latestRefusal = mayWrite(latest, identity.device, Number.MAX_SAFE_INTEGER);
    const latestMember = latest.deviceOwner.has(identity.device);
    const next: SpaceRow = {
      ...now,
      epochKeys: keys,
      epoch: latestEpoch,
      names: { ...(now.names ?? {}), ...names },
    };
    if (latestRefusal) next.readOnly = latestRefusal;
    else delete next.readOnly;
    // Its redemption counts: the secret proves nothing to the relay any more, but stays to open a
    // rotation sealed to the invitation that arrives later (convergence fuzzer, members mode).
    if (latestMember && now.invitation && !options.keepInvitation) {
      next.redeemed = now.invitation;
      delete next.invitation;
    }
    await spacesT.put(next);
  });
  await shareMissingKeys(replica, space);
  return true;
}

/**
 * Per replica, spaces whose missing keys are being shared now -> whether to look again when done. A
 * call meanwhile (a share's own absorbing, or operations that just arrived) only asks for another look:
 * skipped, the operations it came for would get no share until the next ones arrive (soak seed 160072).
 */
const sharing = new WeakMap<Replica, Map<string, boolean>>();
/** Looks again at most this many times in a row (a share that does not count changes nothing). */
const MAX_SHARE_PASSES = 3;

/**
 * Passes on keys some current device of the space lacks (PROTOCOL.md 10, "Keys"), in one `share`
 * operation per epoch:
 * - the current epoch's, when this device is an admin holding it: a device whose redemption or
 *   addition was concurrent with the rotation (so the rotation did not seal to it) would otherwise
 *   never open what is written under it, and its own later commits would wait behind those;
 * - a cancelled rotation's (its author was removed concurrently), when this device is any member
 *   holding it: commits written under it before the cancellation reached their writers open nowhere
 *   else otherwise, the senior admin who cancelled it first of all (it never had that key).
 * Two devices sharing at once only duplicate work: a share never replaces a key already sealed.
 */
export async function shareMissingKeys(replica: Replica, space: SpaceId): Promise<void> {
  const identity = replica.identity;
  if (!identity) return;
  let mine = sharing.get(replica);
  if (!mine) sharing.set(replica, (mine = new Map()));
  if (mine.has(space)) return void mine.set(space, true);
  try {
    for (let pass = 0; pass < MAX_SHARE_PASSES; pass++) {
      mine.set(space, false);
      await shareOnce(replica, space, identity.device);
      if (!mine.get(space)) break;
    }
  } finally {
    mine.delete(space);
  }
}

/** One look at what to share (`shareMissingKeys`). */
async function shareOnce(replica: Replica, space: SpaceId, device: DeviceId): Promise<void> {
  const state = await readMembership(replica.dexie, space);
  const row = await replica.dexie.table<SpaceRow>("_spaces").get(space);
  if (!state || !row) return;
  const me = state.members.get(state.deviceOwner.get(device) ?? "");
  if (!me) return;
  const keys = keySetOf(row);
  const current = [...state.rotations].reverse().find((r) => r.epoch === state.epoch);
  const devices = [...state.members.values()].flatMap((m) => m.devices);
  const lacking = (r: Rotation) => devices.filter((d) => !r.keys[d.device]);
  // Per epoch, who to share it to: every current device without it, for the current rotation (by an
  // admin) and cancelled ones (by any member); for older counted rotations, the devices the log says
  // likely lack it (`keyNeeds`, by any member holding it: membership soak seed 100190).
  const due = new Map<number, DeviceKeys[]>();
  const add = (epoch: number, to: readonly DeviceKeys[]) => {
    if (!keys.has(epoch) || to.length === 0) return;
    const seen = due.get(epoch) ?? [];
    for (const d of to) if (!seen.some((x) => x.device === d.device)) seen.push(d);
    due.set(epoch, seen);
  };
  if (current && state.epoch !== 0 && me.role === "admin") add(current.epoch, lacking(current));
  for (const r of state.cancelledRotations) add(r.epoch, lacking(r));
  for (const [epoch, needs] of state.keyNeeds)
    add(
      epoch,
      devices.filter((d) => needs.includes(d.device)),
    );
  for (const [epoch, missing] of due) {
    const sealed: Record<string, string> = {};
    for (const d of missing) sealed[d.device] = await sealKeySet(keys, fromHex(d.agreementKey, 32));
    await appendMembershipOp(replica, space, { kind: "share", epoch, keys: sealed });
  }
}

/** Throws `NotPermitted` when the space's row says this device may not write there. */
export function assertWritable(row: Pick<SpaceRow, "readOnly" | "name"> | undefined): void {
  const why = row?.readOnly;
  if (!why) return;
  const name = row.name ? `"${row.name}"` : "this space";
  if (why === "reader")
    throw new NotPermitted("reader", `You can read ${name} but not change it: your role there is reader.`);
  if (why === "removed")
    throw new NotPermitted("removed", `You no longer have access to ${name}: this device was removed.`);
  throw new NotPermitted("not-a-member", `This device is not a member of ${name} yet.`);
}
