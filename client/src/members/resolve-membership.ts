import type { DeviceKeys, MembershipAction, MembershipOp, Role } from "./membership-op.ts";

/** A current member of a space. */
export interface Member {
  person: string;
  name: string;
  role: Role;
  /** The person's current devices. */
  devices: DeviceKeys[];
  /** Seniority: the position, in the log's order, of the op that added this person (the creator: 0). */
  since: number;
}

/** Why an operation of the log does not count. */
export type RefusedOpReason =
  | "not-the-creator"
  | "unauthorized"
  | "malformed"
  | "removed-concurrently"
  | "concurrent-with-removal"
  | "invitation-unknown"
  | "invitation-expired"
  | "invitation-revoked"
  | "invitation-used"
  | "already-added";

/** An invitation as the log says it is now. */
export interface InvitationState {
  /** The id of the `invite` operation. */
  op: string;
  role: Role;
  expires: number;
  uses: number;
  revoked: boolean;
  /** The devices whose redemptions of it count, in the log's order. */
  redeemedBy: string[];
  /** The invitation's X25519 key and the key set sealed to it (absent in invitations without keys). */
  agreementKey?: string;
  keys?: string;
  /** A device link's person: its redemption adds a device to this person. */
  person?: string;
}

/** A counted key rotation. */
export interface Rotation {
  /** The id of the `rotate` operation. */
  op: string;
  /** The new epoch's label. */
  epoch: number;
  /** Device id or invitation key -> the key set sealed to it (hex). */
  keys: Record<string, string>;
}

/** What a space's membership log says, the same on every replica that holds the same operations. */
export interface MembershipState {
  /** The space's current key epoch: the label of the last counted rotation in the log's order, or 0. */
  epoch: number;
  /** Counted rotations, in the log's order. */
  rotations: Rotation[];
  /**
   * Rotations that were authorized where they were written but were cancelled since (rules 3 and 4:
   * their author removed concurrently), in the log's order, with the shares of their epochs. Their
   * epochs are never sealed under again, but commits written while a device counted one (before the
   * removal reached it) are sealed under it: their keys stay readable and shareable, so those
   * commits open everywhere. Epochs of counted rotations are never among them.
   */
  cancelledRotations: Rotation[];
  /**
   * Counted rotations' epochs -> current devices that likely lack the epoch's key, for any member who
   * holds it to share (`shareMissingKeys`): the rotation did not seal it to them (nor to the
   * invitation they redeemed), and they were not added after it (a device added after a rotation got
   * a key set holding its epoch from whoever added it). A rotation written while its author held a
   * member removed whose removal was cancelled since, or concurrently with a redemption, leaves such
   * a device; without a share it could never open what was sealed under that epoch.
   */
  keyNeeds: Map<number, string[]>;
  /** Invitations by their public key (hex). */
  invitations: Map<string, InvitationState>;
  /**
   * Devices of people demoted to reader -> the last of their commits that counts (the `cut` of the
   * demotion). A current reader's later data commits are refused.
   */
  readerCut: Map<string, number>;
  /** Every device ever added -> its person, removed ones included (for history and audit). */
  everOwner: Map<string, string>;
  /** Every person ever added -> the (sealed) name the op that added them gave, removed ones included. */
  names: Map<string, string>;
  /** Current members by person id. */
  members: Map<string, Member>;
  /** Current device id -> its person. */
  deviceOwner: Map<string, string>;
  /**
   * Removed devices -> the last of their commits that counts (the highest `cut` any valid removal of
   * the device recorded; 0 when none did). Their commits beyond it are dropped, however they arrive.
   */
  removedDevices: Map<string, number>;
  /** Ops that count, in the log's order. */
  order: string[];
  /** Ops that do not count, with why. */
  refused: Map<string, RefusedOpReason>;
  /** Ops held whose causal past is not all here yet: they wait. */
  waiting: string[];
  /** The ids of the held ops no other held op names as parent: what a new op's `parents` are. */
  heads: string[];
  /**
   * The region the space is pinned to (`createSpace({ residency })`): set by the counted `create`
   * only, so no later operation, by anyone, changes it. Absent: not pinned.
   */
  residency?: string;
}

interface Node {
  id: string;
  op: MembershipOp;
  ancestors: Set<string>;
  index: number;
}

/**
 * Computes a space's members, roles and removed devices from the operations of its membership log
 * (`ops`: op id -> op, signatures already verified with `verifyOp`), deterministically: the result
 * depends only on the set of operations, never on the order they arrived in. `creatorKey` is the
 * Ed25519 key (hex) the space is bound to: only a `create` by it starts the log.
 *
 * The rules (PROTOCOL.md, "Membership log"):
 * 1. Order: the ops form a graph by their `parents`; the log's order is a topological order that
 *    takes, among the ops ready, the smallest id first. An op whose ancestors are not all held waits.
 * 2. Authority at that point: an op counts only if its author was allowed to do it in the state its
 *    own causal past gives (its ancestors that count): admins add people and devices, change roles and
 *    remove; any member may add a device of their own and remove themselves or a device of their own.
 * 3. Removal wins: a counted removal of a person (or device) cancels every op that person (device)
 *    authored that is not in the removal's causal past: what they did concurrently with, or after,
 *    being removed. Removals are applied most senior remover first (then smallest op id), and a
 *    removal cancelled by an earlier one does nothing, so two admins removing each other concurrently
 *    end with the more senior one in place.
 * 4. Removal also wins over concurrent grants: an op adding a device to, re-adding, or changing the
 *    role of a person, concurrent with a counted removal of that person, does not count.
 * 5. Invitations: a redemption needs its invitation in its causal past, not revoked nor expired; a
 *    revocation cancels concurrent redemptions; only the first `uses` redemptions in the log's order count.
 * 6. Concurrent adds of one person or one device: the first in the log's order counts.
 * Rules 2 to 6 are applied until nothing changes (cancelling an op can take away what later ops
 * relied on).
 *
 * @example
 * const state = resolveMembership(ops, creatorKey);
 * state.members.get(person)?.role; // "writer"
 */
export function resolveMembership(
  ops: ReadonlyMap<string, MembershipOp>,
  creatorKey: string,
): MembershipState {
  const { nodes, waiting } = order(ops);
  // Verdicts of every rule but rule 2, which only ever add up (a refused op never counts again).
  const sticky = new Map<string, RefusedOpReason>();
  for (const n of nodes) {
    const reason = structural(n, creatorKey);
    if (reason) sticky.set(n.id, reason);
  }
  let refused = new Map(sticky);
  let authority = "";
  for (let round = 0; round <= nodes.length; round++) {
    let changed = false;
    // Rule 2: authority in the op's own causal past, as the other rules' verdicts leave it. Decided
    // again from scratch each round: a removal that counted in an earlier round may have been refused
    // since (rules 3 and 4: a mutual removal of admins), and the ops whose past it was in regain the
    // authority it took (membership soak seed 92057: the senior admin's shares stayed refused, so it
    // wrote them again and again).
    refused = new Map(sticky);
    for (const n of nodes) {
      if (refused.has(n.id)) continue;
      const past = replay(nodes.filter((m) => n.ancestors.has(m.id) && !refused.has(m.id)));
      const why = refusal(n.op, past, epochsIn(nodes, n));
      if (why) refused.set(n.id, why);
    }
    const verdicts = [...refused].filter(([id]) => !sticky.has(id)).join();
    if (verdicts !== authority) changed = true;
    authority = verdicts;
    const refuse = (id: string, why: RefusedOpReason) => {
      refused.set(id, why);
      sticky.set(id, why);
    };
    // Concurrent adds of one person or one device: the first in the log's order counts.
    for (const id of replay(nodes.filter((m) => !refused.has(m.id))).conflicts) {
      refuse(id, "already-added");
      changed = true;
    }
    // Invitations: a revocation cancels the redemptions outside its causal past; redemptions beyond an
    // invitation's uses do not count, the first ones in the log's order do.
    const used = new Map<string, number>();
    const invites = replay(nodes.filter((m) => !refused.has(m.id))).invitations;
    for (const n of nodes) {
      const a = n.op.action;
      if (refused.has(n.id)) continue;
      if (a.kind === "revoke-invite") {
        for (const m of nodes) {
          const b = m.op.action;
          if (
            b.kind === "redeem" &&
            b.invitation === a.invitation &&
            !refused.has(m.id) &&
            !n.ancestors.has(m.id)
          ) {
            refuse(m.id, "invitation-revoked");
            changed = true;
          }
        }
      }
    }
    for (const n of nodes) {
      const a = n.op.action;
      if (a.kind !== "redeem" || refused.has(n.id)) continue;
      const count = (used.get(a.invitation) ?? 0) + 1;
      used.set(a.invitation, count);
      if (count > (invites.get(a.invitation)?.uses ?? 0)) {
        refuse(n.id, "invitation-used");
        changed = true;
      }
    }
    // Rules 3 and 4: removals, most senior remover first.
    const now = replay(nodes.filter((m) => !refused.has(m.id)));
    const seniority = (n: Node) => {
      const person = now.everOwner.get(n.op.author);
      return person === undefined
        ? Number.MAX_SAFE_INTEGER
        : (now.since.get(person) ?? Number.MAX_SAFE_INTEGER);
    };
    const removals = nodes
      .filter((n) => n.op.action.kind === "remove" && !refused.has(n.id))
      .sort((a, b) => seniority(a) - seniority(b) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    for (const r of removals) {
      if (refused.has(r.id)) continue;
      const action = r.op.action as Extract<MembershipAction, { kind: "remove" }>;
      const targets = action.device
        ? new Set([action.device])
        : new Set(now.everDevices.get(action.person) ?? []);
      for (const n of nodes) {
        if (n === r || refused.has(n.id) || r.ancestors.has(n.id)) continue;
        if (targets.has(n.op.author)) {
          refuse(n.id, "removed-concurrently");
          changed = true;
        } else if (!action.device && grants(n.op.action, action.person) && !n.ancestors.has(r.id)) {
          refuse(n.id, "concurrent-with-removal");
          changed = true;
        }
      }
    }
    if (!changed) break;
  }
  const counted = nodes.filter((n) => !refused.has(n.id));
  const state = replay(counted);
  const named = new Set(nodes.flatMap((n) => n.op.parents));
  const countedEpochs = new Set(state.rotations.map((r) => r.epoch));
  const cancelledRotations: Rotation[] = [];
  for (const n of nodes) {
    const a = n.op.action;
    const why = refused.get(n.id);
    if (a.kind !== "rotate" || (why !== "removed-concurrently" && why !== "concurrent-with-removal"))
      continue;
    if (countedEpochs.has(a.epoch) || cancelledRotations.some((r) => r.epoch === a.epoch)) continue;
    const keys = { ...a.keys };
    for (const [k, v] of Object.entries(state.orphanShares.get(a.epoch) ?? {})) keys[k] ??= v;
    cancelledRotations.push({ op: n.id, epoch: a.epoch, keys });
  }
  const root = counted.find((n) => n.op.action.kind === "create")?.op.action;
  const residency = root?.kind === "create" ? root.residency : undefined;
  return {
    ...(residency !== undefined && { residency }),
    epoch: state.rotations.at(-1)?.epoch ?? 0,
    rotations: state.rotations,
    cancelledRotations,
    keyNeeds: keyNeedsOf(counted, state.rotations, state.deviceOwner),
    invitations: state.invitations,
    readerCut: state.readerCut,
    everOwner: state.everOwner,
    names: state.names,
    members: state.members,
    deviceOwner: state.deviceOwner,
    removedDevices: state.removedDevices,
    order: counted.map((n) => n.id),
    refused,
    waiting,
    heads: nodes
      .map((n) => n.id)
      .filter((id) => !named.has(id))
      .sort(),
  };
}

/** `MembershipState.keyNeeds`, from the counted ops in the log's order. */
function keyNeedsOf(
  counted: readonly Node[],
  rotations: readonly Rotation[],
  deviceOwner: ReadonlyMap<string, string>,
): Map<number, string[]> {
  const addedBy = new Map<string, Node>();
  for (const n of counted) {
    const a = n.op.action;
    if ("device" in a && typeof a.device === "object" && !addedBy.has(a.device.device))
      addedBy.set(a.device.device, n);
  }
  const out = new Map<number, string[]>();
  for (const rotation of rotations) {
    // (A rotation's entry for the invitation a device redeemed is not taken as the device's copy: the
    // log cannot say whether the device still holds that invitation's secret, and one share too many
    // costs one operation.)
    const lacking = [...deviceOwner.keys()].filter((d) => {
      if (rotation.keys[d]) return false;
      const added = addedBy.get(d);
      return added !== undefined && !added.ancestors.has(rotation.op);
    });
    if (lacking.length > 0) out.set(rotation.epoch, lacking.sort());
  }
  return out;
}

/** Topological order, smallest id first among the ready; ops with a missing ancestor wait. */
function order(ops: ReadonlyMap<string, MembershipOp>): { nodes: Node[]; waiting: string[] } {
  const children = new Map<string, string[]>();
  const missing = new Map<string, number>();
  for (const [id, op] of ops) {
    const parents = [...new Set(op.parents)];
    missing.set(id, parents.length);
    for (const p of parents) children.set(p, [...(children.get(p) ?? []), id]);
  }
  const ready = [...ops.keys()].filter((id) => missing.get(id) === 0).sort();
  const nodes: Node[] = [];
  const byId = new Map<string, Node>();
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

/** Refusals that need no state: the log's root must be its creator's `create`, and only it. */
function structural(n: Node, creatorKey: string): RefusedOpReason | undefined {
  const { op } = n;
  if (op.action.kind === "create") {
    if (op.parents.length > 0) return "malformed";
    if (op.authorKey !== creatorKey) return "not-the-creator";
    const d = op.action.device;
    if (d.device !== op.author || d.signingKey !== op.authorKey) return "malformed";
    return undefined;
  }
  return op.parents.length === 0 ? "malformed" : undefined;
}

interface Replayed {
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
function replay(nodes: readonly Node[]): Replayed {
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
function refusal(op: MembershipOp, past: Replayed, epochs: ReadonlySet<number>): RefusedOpReason | undefined {
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
function epochsIn(nodes: readonly Node[], n: Node): Set<number> {
  const out = new Set<number>();
  if (n.op.action.kind !== "share") return out;
  for (const m of nodes)
    if (n.ancestors.has(m.id) && m.op.action.kind === "rotate") out.add(m.op.action.epoch);
  return out;
}

/** Whether an action grants something to `person` (a device, membership again, a role). */
function grants(a: MembershipAction, person: string): boolean {
  return (
    (a.kind === "add-person" || a.kind === "add-device" || a.kind === "set-role" || a.kind === "redeem") &&
    a.person === person
  );
}

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

/** Why a data commit may not count, or undefined when it may: see `mayWrite`. */
export type WriteRefusal = "not-a-member" | "removed" | "reader";

/**
 * Whether commit `seq` of `device` counts under `state`: the device is a current device of a writer or
 * admin, or the commit is within the `cut` of its removal or of its person's demotion to reader. A space
 * without a log (`state` undefined) is open: every key holder writes.
 *
 * @example
 * const why = mayWrite(state, commit.device, commit.seq); // undefined, or "reader"
 */
export function mayWrite(
  state: MembershipState | undefined,
  device: string,
  seq: number,
): WriteRefusal | undefined {
  if (!state || state.order.length === 0) return undefined;
  const person = state.deviceOwner.get(device);
  if (person !== undefined) {
    if (state.members.get(person)!.role !== "reader") return undefined;
    return seq <= (state.readerCut.get(device) ?? 0) ? undefined : "reader";
  }
  const cut = state.removedDevices.get(device);
  if (cut !== undefined) return seq <= cut ? undefined : "removed";
  return "not-a-member";
}
