import { NotFound, NotPermitted, UnsignedDevice, ValidationError } from "../errors.ts";
import { identityFromSeed } from "../identity/identity-from-seed.ts";
import { sealKeySet, sealName, type KeySet } from "../members/key-set.ts";
import type { MembershipAction, Role } from "../members/membership-op.ts";
import type { MembershipState } from "../members/resolve-membership.ts";
import { fromHex, toHex } from "../protocol/hex.ts";
import type { Replica } from "../replica/replica.ts";
import type { QuarantineRow, SpaceRow, VectorRow } from "../replica/stored-rows.ts";
import type { SpaceId } from "../types.ts";
import { deriveRelayToken } from "../crypto/keys.ts";
import { absorbMembership, appendMembershipOp, creatorKeyOf, readMembership } from "./membership-log.ts";
import { formatMemberInvite } from "./member-invite-link.ts";
import { deviceKeysOf, keySetOf, randomHexId, roleOf } from "./member-keys.ts";

/** Options of `db.invite(space, options)`. */
export interface InviteOptions {
  /** The role the invitee gets (default `writer`). */
  role?: Role;
  /** How long the link can be redeemed, in ms (default 7 days). */
  expiresIn?: number;
  /** How many devices may redeem it (default 1: single-use). */
  uses?: number;
  /** The page the link opens (default: this page). */
  base?: string;
  /** Your own name in the space, if its membership starts with this invitation (default "Creator"). */
  me?: string;
}

const DAY = 24 * 60 * 60_000;

async function rowOf(replica: Replica, space: SpaceId): Promise<SpaceRow> {
  const row = await replica.dexie.table<SpaceRow>("_spaces").get(space);
  if (!row) throw new NotFound(`No space ${space} on this device.`);
  return row;
}

/**
 * The space's membership state, starting its log first when it has none: the creator's device writes
 * the `create` operation (it alone can: the log's root must be signed by the key of the space's claim).
 */
export async function ensureMembership(
  replica: Replica,
  space: SpaceId,
  me = "Creator",
  residency?: string,
): Promise<MembershipState> {
  const identity = replica.identity;
  if (!identity) throw new UnsignedDevice();
  const existing = await readMembership(replica.dexie, space);
  if (existing) return existing;
  const row = await rowOf(replica, space);
  if (creatorKeyOf(row) !== toHex(identity.signingPublic))
    throw new NotPermitted(
      "not-creator",
      `Only the device that created "${row.name}" can start managing its members.`,
    );
  await appendMembershipOp(replica, space, {
    kind: "create",
    person: randomHexId(),
    name: await sealName(me, keySetOf(row), 0, space),
    device: deviceKeysOf(identity),
    ...(residency !== undefined && { residency }),
  });
  return (await readMembership(replica.dexie, space))!;
}

/** Throws `NotPermitted` unless this device belongs to an admin of the space. */
function assertAdmin(state: MembershipState, device: string, what: string): void {
  if (roleOf(state, device)?.role !== "admin")
    throw new NotPermitted("not-admin", `Only an admin can ${what}.`);
}

/**
 * Writes an invitation into the space's log and returns its link (PROTOCOL.md 10, "Invitations"): a new
 * secret whose keys the `invite` operation names, with the space's keys sealed to it. `person` makes a
 * device link (the redeemer becomes a device of that person).
 */
export async function inviteMember(
  replica: Replica,
  space: SpaceId,
  options: InviteOptions & { person?: string; kind?: "invite" | "recover" } = {},
  defaultBase = "shoal:",
): Promise<{ link: string; invitation: string; expires: number }> {
  const role = options.role ?? "writer";
  if (!["admin", "writer", "reader"].includes(role)) throw new ValidationError(`Unknown role ${role}.`);
  const uses = options.uses ?? 1;
  const expiresIn = options.expiresIn ?? 7 * DAY;
  if (!Number.isSafeInteger(uses) || uses < 1)
    throw new ValidationError("uses must be a whole number of at least 1.");
  if (!Number.isSafeInteger(expiresIn) || expiresIn < 1 || Date.now() + expiresIn > Number.MAX_SAFE_INTEGER)
    throw new ValidationError("expiresIn must be a positive number of ms.");
  const state = await ensureMembership(replica, space, options.me);
  const mine = roleOf(state, replica.device);
  if (options.person === undefined) assertAdmin(state, replica.device, "invite people");
  else if (mine?.person !== options.person)
    assertAdmin(state, replica.device, "link a device of someone else");
  // Keys a rotation just brought are sealed into the invitation too: its redeemer has no other way
  // to get the key of a rotation that is already in its log's past (convergence fuzzer, members mode).
  await absorbMembership(replica, space);
  const row = await rowOf(replica, space);
  const secret = globalThis.crypto.getRandomValues(new Uint8Array(32));
  const invitation = await identityFromSeed(secret);
  const expires = Date.now() + expiresIn;
  const action: MembershipAction = {
    kind: "invite",
    invitation: toHex(invitation.signingPublic),
    role: options.person !== undefined ? (mine?.role ?? role) : role,
    expires,
    uses,
    agreementKey: toHex(invitation.agreementPublic),
    keys: await sealKeySet(keySetOf(row), invitation.agreementPublic),
    ...(options.person !== undefined && { person: options.person }),
  };
  await appendMembershipOp(replica, space, action);
  const link = formatMemberInvite(options.base ?? defaultBase, {
    kind: options.kind ?? "invite",
    spaceId: space,
    secret,
    token: await deriveRelayToken(row.key, fromHex(space, 16)),
    claim: row.claim!,
    name: row.name,
  });
  return { link, invitation: action.invitation, expires };
}

/** Revokes an invitation (by its key, as `inviteMember` returned it): later redemptions do not count. */
export async function revokeInvitation(replica: Replica, space: SpaceId, invitation: string): Promise<void> {
  const state = await readMembership(replica.dexie, space);
  if (!state?.invitations.has(invitation)) throw new NotFound(`No invitation ${invitation} in this space.`);
  assertAdmin(state, replica.device, "revoke invitations");
  await appendMembershipOp(replica, space, { kind: "revoke-invite", invitation });
}

/**
 * Per device, the highest commit of it this device holds in the space (the `cut` of a removal), below
 * the first one it quarantined for membership: the vector covers quarantined commits too, and a cut
 * over one (a reader's write, refused, then the reader removed) would let every replica that gets it
 * later apply what the others refused (convergence fuzzer, members mode, seed 5015).
 */
async function heldOf(
  replica: Replica,
  space: SpaceId,
  devices: readonly string[],
): Promise<Record<string, number>> {
  const rows = await replica.dexie.table<VectorRow>("_vectors").bulkGet(devices.map((d) => [space, d]));
  const refused = (
    await replica.dexie.table<QuarantineRow>("_quarantine").where("space").equals(space).toArray()
  ).filter((q) => q.reason === "membership");
  return Object.fromEntries(
    devices.map((d, i) => {
      const first = Math.min(...refused.filter((q) => q.device === d).map((q) => q.seq));
      return [d, Math.min(rows[i]?.seq ?? 0, first - 1)];
    }),
  );
}

/**
 * Gives a person a new role. Demoting to `reader` records, per device of theirs, the last commit this
 * device accepted: those stay, their later data commits are refused everywhere.
 */
export async function setMemberRole(
  replica: Replica,
  space: SpaceId,
  person: string,
  role: Role,
): Promise<void> {
  if (!["admin", "writer", "reader"].includes(role)) throw new ValidationError(`Unknown role ${role}.`);
  const state = await readMembership(replica.dexie, space);
  const member = state?.members.get(person);
  if (!state || !member) throw new NotFound(`No member ${person} in this space.`);
  assertAdmin(state, replica.device, "change roles");
  const cut =
    role === "reader"
      ? await heldOf(
          replica,
          space,
          member.devices.map((d) => d.device),
        )
      : undefined;
  await appendMembershipOp(replica, space, { kind: "set-role", person, role, ...(cut && { cut }) });
  // Demoting oneself refuses one's own next write at once (absorbing runs only for remote ops).
  await absorbMembership(replica, space);
}

/**
 * Removes a person (all their devices) or one device, then rotates the space key: a new epoch key,
 * with every key of the space, sealed to each remaining device and each open invitation, so whatever
 * is written afterwards is unreadable to the removed devices. The removal's `cut` keeps, per removed
 * device, the commits this device had accepted; every replica drops the rest.
 */
export async function removeMember(
  replica: Replica,
  space: SpaceId,
  target: { person: string } | { device: string },
): Promise<void> {
  const state = await readMembership(replica.dexie, space);
  if (!state) throw new NotFound("This space has no members to remove: it is an open space.");
  const person = "person" in target ? target.person : state.deviceOwner.get(target.device);
  const member = person === undefined ? undefined : state.members.get(person);
  if (!member) throw new NotFound("No such member or device in this space.");
  const devices = "device" in target ? [target.device] : member.devices.map((d) => d.device);
  const mine = roleOf(state, replica.device);
  if (mine?.role !== "admin" && mine?.person !== member.person)
    throw new NotPermitted("not-admin", "Only an admin can remove someone else.");
  await appendMembershipOp(replica, space, {
    kind: "remove",
    person: member.person,
    ...("device" in target && { device: target.device }),
    cut: await heldOf(replica, space, devices),
  });
  // Leaving on one's own needs no rotation by oneself; an admin rotates.
  if (mine?.role === "admin" && !devices.includes(replica.device)) await rotateKey(replica, space);
  // Removing oneself (or one's own person) refuses one's own next write at once, as a removal that
  // arrives from elsewhere does (convergence fuzzer, members mode, soak seed 30004).
  else await absorbMembership(replica, space);
}

/** Rotates the space key now (an admin): see `removeMember`. */
export async function rotateKey(replica: Replica, space: SpaceId): Promise<number> {
  const state = await readMembership(replica.dexie, space);
  if (!state) throw new NotFound("This space has no membership log.");
  assertAdmin(state, replica.device, "rotate the space key");
  const row = await rowOf(replica, space);
  const keys: KeySet = keySetOf(row);
  let epoch: number;
  do epoch = 1 + (globalThis.crypto.getRandomValues(new Uint32Array(1))[0]! % 0xfffffffe);
  while (keys.has(epoch) || state.rotations.some((r) => r.epoch === epoch));
  const key = globalThis.crypto.getRandomValues(new Uint8Array(32));
  keys.set(epoch, key);
  const sealed: Record<string, string> = {};
  for (const m of state.members.values())
    for (const d of m.devices) sealed[d.device] = await sealKeySet(keys, fromHex(d.agreementKey, 32));
  const now = Date.now();
  for (const [inv, i] of state.invitations)
    if (i.agreementKey && !i.revoked && i.expires > now && i.redeemedBy.length < i.uses)
      sealed[inv] = await sealKeySet(keys, fromHex(i.agreementKey, 32));
  const spacesT = replica.dexie.table<SpaceRow>("_spaces");
  await appendMembershipOp(replica, space, { kind: "rotate", epoch, keys: sealed }, async () => {
    const now = await spacesT.get(space);
    if (now) await spacesT.put({ ...now, epochKeys: { ...(now.epochKeys ?? {}), [epoch]: key }, epoch });
  });
  return epoch;
}
