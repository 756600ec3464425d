import type { DeviceKeys, MembershipOp } from "./membership-op.ts";
import type { LogNode } from "./membership-order.ts";
import type { InvitationState, Member, RefusedOpReason, Rotation } from "./membership-state.ts";

export interface Replayed {
  members: Map<string, Member>;
  deviceOwner: Map<string, string>;
  removedDevices: Map<string, number>;
  /** Person -> seniority, also for removed people. */
  since: Map<string, number>;
  /** Every device a person ever had (removal cancels what all of them did). */
  everDevices: Map<string, string[]>;
  /** Device -> the person it ever belonged to. */
  everOwner: Map<string, string>;
  /** People a counted removal removed (and not re-added since). */
  removed: Set<string>;
  /** Invitations by their public key. */
  invitations: Map<string, InvitationState>;
  rotations: Rotation[];
  readerCut: Map<string, number>;
  names: Map<string, string>;
  /** Shares of epochs no counted rotation started (a cancelled one did): epoch -> sealed key sets. */
  orphanShares: Map<number, Record<string, string>>;
  /**
   * Ops that add a person who is a member already, or a device that was ever added, when their turn
   * comes in the log's order: concurrent adds of the same person or device (the first one counts).
   */
  conflicts: string[];
}

/** The state after applying `nodes` (counted ops, in the log's order). */
export function replay(nodes: readonly LogNode[]): Replayed {
  const r: Replayed = {
    members: new Map(),
    deviceOwner: new Map(),
    removedDevices: new Map(),
    since: new Map(),
    everDevices: new Map(),
    everOwner: new Map(),
    removed: new Set(),
    invitations: new Map(),
    rotations: [],
    readerCut: new Map(),
    names: new Map(),
    orphanShares: new Map(),
    conflicts: [],
  };
  const addDevice = (person: string, d: DeviceKeys) => {
    r.members.get(person)!.devices.push(d);
    r.deviceOwner.set(d.device, person);
    r.everDevices.set(person, [...(r.everDevices.get(person) ?? []), d.device]);
    r.everOwner.set(d.device, person);
  };
  const dropDevice = (device: string, cut: number) => {
    r.deviceOwner.delete(device);
    r.removedDevices.set(device, Math.max(r.removedDevices.get(device) ?? 0, cut));
  };
  for (const n of nodes) {
    const a = n.op.action;
    switch (a.kind) {
      case "redeem":
        if (r.invitations.get(a.invitation)?.person !== undefined) {
          // A device link: another device of the person who made it.
          if (r.everOwner.has(a.device.device) || !r.members.has(a.person)) r.conflicts.push(n.id);
          else {
            addDevice(a.person, a.device);
            r.invitations.get(a.invitation)!.redeemedBy.push(a.device.device);
          }
          break;
        }
      // falls through: an invitation of a new person
      case "create":
      case "add-person": {
        if (r.members.has(a.person) || r.everOwner.has(a.device.device)) {
          r.conflicts.push(n.id);
          break;
        }
        const role =
          a.kind === "create"
            ? "admin"
            : a.kind === "redeem"
              ? (r.invitations.get(a.invitation)?.role ?? "reader")
              : a.role;
        r.members.set(a.person, {
          person: a.person,
          name: a.name,
          role,
          devices: [],
          since: n.index,
        });
        if (!r.since.has(a.person)) r.since.set(a.person, n.index);
        r.names.set(a.person, a.name);
        r.removed.delete(a.person);
        addDevice(a.person, a.device);
        if (a.kind === "redeem") r.invitations.get(a.invitation)?.redeemedBy.push(a.device.device);
        break;
      }
      case "add-device":
        if (r.everOwner.has(a.device.device)) r.conflicts.push(n.id);
        else if (r.members.has(a.person)) addDevice(a.person, a.device);
        break;
      case "set-role": {
        const m = r.members.get(a.person);
        if (!m) break;
        m.role = a.role;
        for (const d of m.devices)
          if (a.role === "reader")
            r.readerCut.set(d.device, Math.max(r.readerCut.get(d.device) ?? 0, a.cut?.[d.device] ?? 0));
        break;
      }
      case "invite":
        r.invitations.set(a.invitation, {
          op: n.id,
          role: a.role,
          expires: a.expires,
          uses: a.uses,
          revoked: false,
          redeemedBy: [],
          ...(a.agreementKey !== undefined && { agreementKey: a.agreementKey }),
          ...(a.keys !== undefined && { keys: a.keys }),
          ...(a.person !== undefined && { person: a.person }),
        });
        break;
      case "rotate":
        // A copy: shares add to it, and replays must never change the operation itself.
        r.rotations.push({ op: n.id, epoch: a.epoch, keys: { ...a.keys } });
        break;
      case "share": {
        const rotation = r.rotations.find((x) => x.epoch === a.epoch);
        const keys = rotation?.keys ?? r.orphanShares.get(a.epoch) ?? {};
        for (const [k, v] of Object.entries(a.keys)) keys[k] ??= v;
        if (!rotation) r.orphanShares.set(a.epoch, keys);
        break;
      }
      case "revoke-invite": {
        const i = r.invitations.get(a.invitation);
        if (i) i.revoked = true;
        break;
      }
      case "remove": {
        // A device removed already (by a concurrent removal, earlier in the order): the highest cut
        // any counted removal recorded for it counts, whichever came first.
        for (const [d, cut] of Object.entries(a.cut))
          if (r.removedDevices.has(d) && r.everOwner.get(d) === a.person && (!a.device || a.device === d))
            dropDevice(d, cut);
        const m = r.members.get(a.person);
        if (!m) break;
        if (a.device) {
          m.devices = m.devices.filter((d) => d.device !== a.device);
          dropDevice(a.device, a.cut[a.device] ?? 0);
        } else {
          for (const d of m.devices) dropDevice(d.device, a.cut[d.device] ?? 0);
          r.members.delete(a.person);
          r.removed.add(a.person);
        }
        break;
      }
    }
  }
  return r;
}

/** Why `op`'s author may not do it in `past` (the state its causal past gives), or undefined. */
export function refusal(
  op: MembershipOp,
  past: Replayed,
  epochs: ReadonlySet<number>,
): RefusedOpReason | undefined {
  const a = op.action;
  if (a.kind === "create") return undefined; // checked structurally; `create` has no past
  const fresh = (d: DeviceKeys) => !past.everOwner.has(d.device) && !past.removedDevices.has(d.device);
  if (a.kind === "redeem") {
    // Written by a device that is not a member yet: the invitation is its authority.
    const invitation = past.invitations.get(a.invitation);
    if (!invitation) return "invitation-unknown";
    if (invitation.revoked) return "invitation-revoked";
    if (op.at > invitation.expires) return "invitation-expired";
    if (invitation.person !== undefined)
      return a.person === invitation.person && past.members.has(a.person) && fresh(a.device)
        ? undefined
        : "unauthorized";
    return past.members.has(a.person) || !fresh(a.device) ? "unauthorized" : undefined;
  }
  const person = past.deviceOwner.get(op.author);
  if (person === undefined) return "unauthorized";
  const admin = past.members.get(person)!.role === "admin";
  let ok: boolean;
  switch (a.kind) {
    case "add-person":
      ok = admin && !past.members.has(a.person) && fresh(a.device);
      break;
    case "add-device":
      ok = (admin || person === a.person) && past.members.has(a.person) && fresh(a.device);
      break;
    case "set-role":
      ok = admin && past.members.has(a.person);
      break;
    case "remove": {
      const target = past.members.get(a.person);
      ok =
        target !== undefined &&
        (!a.device || target.devices.some((d) => d.device === a.device)) &&
        (admin || person === a.person);
      break;
    }
    case "invite":
      ok =
        (admin || (a.person !== undefined && a.person === person)) &&
        (a.person === undefined || past.members.has(a.person)) &&
        !past.invitations.has(a.invitation) &&
        Number.isSafeInteger(a.uses) &&
        a.uses >= 1;
      break;
    case "revoke-invite":
      ok = admin && past.invitations.has(a.invitation);
      break;
    case "rotate":
      ok = admin && !past.rotations.some((x) => x.epoch === a.epoch);
      break;
    case "share":
      // Any member holding the key may pass it on, to devices and invitations the log knows only: the
      // key of a rotation in its causal past, counted or cancelled since (`cancelledRotations`). Known,
      // not current: a share to a device that a removal cancelled later stays (the removal it races
      // does not make the share unauthorized, as nothing makes a refused op count again), and a key
      // shared to a device its causal past already removed is one the sharer could leak anyway.
      ok =
        epochs.has(a.epoch) &&
        Object.keys(a.keys).every((k) => past.everOwner.has(k) || past.invitations.has(k));
      break;
    case "erase":
    case "compact":
      ok = admin;
      break;
    case "erase-receipt":
    case "hold-request":
    case "hold":
      ok = true; // any current member device (its author is one, checked above)
      break;
  }
  return ok ? undefined : "unauthorized";
}

/** The epochs of the `rotate` operations in `n`'s causal past, counted or not. */
export function epochsIn(nodes: readonly LogNode[], n: LogNode): Set<number> {
  const out = new Set<number>();
  if (n.op.action.kind !== "share") return out;
  for (const m of nodes)
    if (n.ancestors.has(m.id) && m.op.action.kind === "rotate") out.add(m.op.action.epoch);
  return out;
}
