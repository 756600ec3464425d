import {
  decodeDeviceAuth,
  decodeInvitationProof,
  MEMBERSHIP_EPOCH,
  MEMBERSHIP_REFUSALS,
  decodeSealedCommit,
  membershipOpText,
  opId,
  resolveMembership,
  toHex,
  type DeviceAuth,
  type InvitationProof,
  type MembershipOp,
  type MembershipState,
} from "@shoal/client/protocol";
import { admitDevice, type Admission } from "./membership-gate.ts";
import type { RelayStore } from "./store/store.ts";

/** A space's membership log as the relay holds it, and what it resolves to. */
export interface MembershipView {
  /** Every held operation by id (each verified before it was stored). */
  readonly ops: ReadonlyMap<string, MembershipOp>;
  /** The key the space was claimed with (hex), or `undefined` for a space registered before claims. */
  readonly creator: string | undefined;
  /**
   * The resolved state when the space has members (a counted `create` by its creator key), else
   * `undefined`: the space is open to every holder of its token, as before membership logs.
   */
  readonly state: MembershipState | undefined;
}

interface Entry extends MembershipView {
  ops: Map<string, MembershipOp>;
  state: MembershipState | undefined;
  /** How many operation texts the store held when this entry was read or last added to. */
  held: number;
  /** The last of those texts, to notice a store that changed under the same count (a wipe). */
  last: string | undefined;
}

// Spaces whose state is kept; the oldest goes first. A state costs a few kilobytes per member.
const DEFAULT_MAX_SPACES = 4096;

/**
 * The relay's membership state per space (PROTOCOL.md 10): the space's stored operations resolved
 * with `resolveMembership` against its registered creator key, shared by the upgrade check, the
 * access probe, the invitation endpoint and every session of the space, and resolved again only when
 * an operation is stored. `isLive(space)` says whether this relay has connections to the space: then
 * every operation stored for it reaches `stored` (from this instance's sessions, or from others'
 * through the fan-out), and the kept state is current; otherwise the store is read again and the kept
 * state reused only if the log did not change.
 *
 * @example
 * const memberships = new SpaceMemberships(store, (space) => hub.count(space) > 0);
 * const { state } = await memberships.view(space);
 * if (state && !state.deviceOwner.has(device)) refuse();
 */
export class SpaceMemberships {
  readonly #store: RelayStore;
  readonly #isLive: (space: string) => boolean;
  readonly #maxSpaces: number;
  readonly #entries = new Map<string, Entry>();

  constructor(
    store: RelayStore,
    isLive: (space: string) => boolean = () => false,
    maxSpaces = DEFAULT_MAX_SPACES,
  ) {
    this.#store = store;
    this.#isLive = isLive;
    this.#maxSpaces = maxSpaces;
  }

  /** The space's log and state, read from the store when the kept one may be out of date. */
  async view(space: string): Promise<MembershipView> {
    const kept = this.#entries.get(space);
    if (kept && this.#isLive(space)) return kept;
    const texts = await this.#store.membershipOps(space);
    if (kept && kept.held === texts.length && kept.last === texts.at(-1)) return kept;
    const creator = await this.#store.creator(space);
    const ops = new Map<string, MembershipOp>();
    for (const text of texts) {
      const op = JSON.parse(text) as MembershipOp;
      ops.set(await opId(op), op);
    }
    const entry: Entry = {
      ops,
      creator: creator && toHex(creator),
      state: undefined,
      held: texts.length,
      last: texts.at(-1),
    };
    entry.state = resolved(entry.ops, entry.creator);
    this.#keep(space, entry);
    return entry;
  }

  /**
   * The membership check of a connection to `space` (`admitDevice`, PROTOCOL.md 1 check 10), or
   * `undefined` when the space has no members and lets every holder of its token in.
   *
   * @example
   * const admitted = await memberships.admit(space, offered.device, offered.invitation, Date.now());
   */
  async admit(
    space: string,
    proof: DeviceAuth | undefined,
    invitation: InvitationProof | undefined,
    now: number,
  ): Promise<Admission | undefined> {
    const { state } = await this.view(space);
    return state && admitDevice(space, state, proof, invitation, now);
  }

  /**
   * `admit` for the relay's HTTP endpoints (the access probe, the invitation log), whose bodies carry the
   * proofs as the base64url texts of their subprotocol items: the 403 text (`MEMBERSHIP_REFUSALS`) when
   * the device is refused, `undefined` when it is let in or the space has no members.
   *
   * @example
   * const refused = await memberships.refusalOf(space, deviceText, invitationText);
   */
  async refusalOf(space: string, deviceText: string, invitationText: string): Promise<string | undefined> {
    const proof = decodeDeviceAuth(deviceText);
    const admitted = await this.admit(space, proof, decodeInvitationProof(invitationText), Date.now());
    return admitted && "fault" in admitted ? MEMBERSHIP_REFUSALS[admitted.fault] : undefined;
  }

  /**
   * Takes operations just stored for the space (by this instance or, through the fan-out, another) and
   * resolves the state again. Returns the devices the log removed that it had not removed before, whose
   * connections to the space are to be closed.
   */
  async stored(
    space: string,
    ops: readonly { id: string; op: MembershipOp; text: string }[],
  ): Promise<string[]> {
    if (ops.length === 0) return [];
    const kept = this.#entries.get(space);
    const before = kept?.state?.removedDevices;
    if (!kept) return newlyRemoved(undefined, (await this.view(space)).state);
    for (const { id, op, text } of ops) {
      if (kept.ops.has(id)) continue;
      kept.ops.set(id, op);
      kept.held += 1;
      kept.last = text;
    }
    kept.state = resolved(kept.ops, kept.creator);
    return newlyRemoved(before, kept.state);
  }

  /**
   * Like `stored`, for sealed commits another relay instance stored (the fan-out): their membership
   * operations, if any. Data commits are skipped by their epoch without being read further.
   */
  async delivered(space: string, commits: readonly Uint8Array[]): Promise<string[]> {
    const ops: { id: string; op: MembershipOp; text: string }[] = [];
    for (const bytes of commits) {
      const { header, body } = decodeSealedCommit(bytes);
      if (header.epoch !== MEMBERSHIP_EPOCH) continue;
      const text = membershipOpText(body);
      const op = JSON.parse(text) as MembershipOp;
      ops.push({ id: await opId(op), op, text });
    }
    return this.stored(space, ops);
  }

  #keep(space: string, entry: Entry): void {
    this.#entries.delete(space);
    if (this.#entries.size >= this.#maxSpaces) this.#entries.delete(this.#entries.keys().next().value!);
    this.#entries.set(space, entry);
  }
}

/**
 * The state of a log, or `undefined` when it gives the space no members: no creator key (a space
 * registered before claims keeps working as it did), or no counted `create` by it.
 *
 * @example
 * const state = resolved(ops, creatorHex); // undefined: open space
 */
export function resolved(
  ops: ReadonlyMap<string, MembershipOp>,
  creator: string | undefined,
): MembershipState | undefined {
  if (creator === undefined || ops.size === 0) return undefined;
  const state = resolveMembership(ops, creator);
  return state.order.length > 0 ? state : undefined;
}

function newlyRemoved(
  before: ReadonlyMap<string, number> | undefined,
  after: MembershipState | undefined,
): string[] {
  return [...(after?.removedDevices.keys() ?? [])].filter((d) => !before?.has(d));
}
