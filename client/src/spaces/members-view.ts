import type { Dexie } from "dexie";
import type { Role } from "../members/membership-op.ts";
import type { MemberRow, SpaceRow } from "../replica/stored-rows.ts";
import type { SpaceId } from "../types.ts";
import { stateOf } from "./membership-log.ts";

/** One member of a space as `db.members(space)` shows it. */
export interface MemberView {
  /** The person's id in the space's membership log. */
  readonly person: string;
  /** Display name (sealed in the log; `"(unknown)"` when this device cannot open it). */
  readonly name: string;
  readonly role: Role;
  /** The person's current devices; `you` marks this one. */
  readonly devices: readonly { readonly device: string; readonly you: boolean }[];
  /** Whether this device is one of theirs. */
  readonly you: boolean;
}

/** An invitation of a space, as `db.members(space)` shows it. */
export interface InvitationView {
  /** Its public key (hex): what `db.revokeInvitation` takes. */
  readonly invitation: string;
  readonly role: Role;
  /** When it stops being redeemable (ms since 1970, the inviter's clock). */
  readonly expires: number;
  readonly uses: number;
  /** Devices that redeemed it (counted). */
  readonly used: number;
  readonly revoked: boolean;
  /** Set for a device link: the person the redeeming device joins as. */
  readonly person?: string;
}

/** What `db.members(space)` shows. */
export interface MembersView {
  /** False for an open space (no membership log: every key holder reads and writes). */
  readonly managed: boolean;
  /** This device's role there, if it is a member device. */
  readonly role?: Role;
  /** Members, senior first. */
  readonly members: readonly MemberView[];
  readonly invitations: readonly InvitationView[];
  /** Devices removed from the space. */
  readonly removedDevices: readonly string[];
  /** The space's current key epoch (0 until a removal rotated the key). */
  readonly epoch: number;
}

/**
 * Reads a space's members for display: the log's state with the names `absorbMembership` opened. Only
 * IndexedDB reads, so a live query over it observes everything it depends on.
 */
export async function readMembers(dexie: Dexie, device: string, space: SpaceId): Promise<MembersView> {
  // Dexie promises awaited one by one: a live query stops observing after any other await (browsers).
  const row = await dexie.table<SpaceRow>("_spaces").get(space);
  const rows = await dexie.table<MemberRow>("_members").where("space").equals(space).toArray();
  const state = stateOf(row, rows);
  if (!row || !state) return { managed: false, members: [], invitations: [], removedDevices: [], epoch: 0 };
  const members: MemberView[] = [];
  for (const m of [...state.members.values()].sort((a, b) => a.since - b.since)) {
    members.push({
      person: m.person,
      // Opened when the log arrived (`absorbMembership`): no WebCrypto inside a live query.
      name: row.names?.[m.person] ?? "(unknown)",
      role: m.role,
      devices: m.devices.map((d) => ({ device: d.device, you: d.device === device })),
      you: m.devices.some((d) => d.device === device),
    });
  }
  const mine = members.find((m) => m.you);
  return {
    managed: true,
    ...(mine && { role: mine.role }),
    members,
    invitations: [...state.invitations].map(([invitation, i]) => ({
      invitation,
      role: i.role,
      expires: i.expires,
      uses: i.uses,
      used: i.redeemedBy.length,
      revoked: i.revoked,
      ...(i.person !== undefined && { person: i.person }),
    })),
    removedDevices: [...state.removedDevices.keys()],
    epoch: state.epoch,
  };
}
