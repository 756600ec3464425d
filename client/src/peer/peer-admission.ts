import type { Dexie } from "dexie";
import { AccessDenied, type AccessDeniedReason } from "../errors.ts";
import type { MembershipState } from "../members/resolve-membership.ts";
import { encodeMessage, type Message } from "../protocol/index.ts";
import { MEMBERSHIP_REFUSALS, type MembershipFault } from "../protocol/device-auth.ts";
import type { MemberRow } from "../replica/stored-rows.ts";
import { readMembership } from "../spaces/membership-log.ts";
import type { SpaceId } from "../types.ts";

/** Why a peer link refuses the device at its other end: the faults a peer can judge from its own log. */
export type PeerRefusal = Extract<MembershipFault, "removed" | "not-member">;

/**
 * Whether this device's own membership state lets `device` sync the space with it over a peer link
 * (PROTOCOL.md 10, "Peer links"), the relay's `admitDevice` minus what only a relay sees: a device the
 * log removed is refused; a current member's device is admitted; a device the log does not know is
 * admitted only while the log holds an invitation that can still be redeemed (it may be joining by it,
 * and its redemption reaches this log through the very link), and refused otherwise. A space without a
 * log (`state` undefined) admits every key holder.
 *
 * The device id is the one the link was negotiated with: the relay forwards a signal only from the
 * device its connection proved (`from` equals its `hello`, after the device proof), so a removed
 * device cannot negotiate a new link through a relay that knows of the removal; this check covers the
 * links already open when the removal happens and relays that do not know of it yet.
 *
 * @example
 * const refusal = peerAdmission(await readMembership(dexie, space), peerDevice, Date.now());
 * if (refusal) refuse(refusal);
 */
export function peerAdmission(
  state: MembershipState | undefined,
  device: string,
  now: number,
): PeerRefusal | undefined {
  if (!state) return undefined;
  if (state.removedDevices.has(device)) return "removed";
  if (state.deviceOwner.has(device)) return undefined;
  for (const inv of state.invitations.values())
    if (!inv.revoked && inv.expires >= now && inv.redeemedBy.length < inv.uses) return undefined;
  return "not-member";
}

/** What a person reads on the refused side of a peer link, per fault. */
const PEER_REFUSAL_MESSAGES: Readonly<Record<PeerRefusal, string>> = {
  removed: "You no longer have access to this space: a peer's membership log says this device was removed.",
  "not-member": "A peer refused this device: its membership log does not list it as a member of the space.",
};

/**
 * The typed error for a peer's fatal `membership` error frame (PROTOCOL.md 10): `AccessDenied` with
 * reason `removed` or `not-member`, recognised by the refusal texts the relay uses too.
 *
 * @example
 * if (m.type === "error" && m.code === "membership" && m.fatal) hooks.error(peerAccessDenied(m.message));
 */
export function peerAccessDenied(message: string): AccessDenied {
  const fault: PeerRefusal = message.includes(MEMBERSHIP_REFUSALS.removed) ? "removed" : "not-member";
  const reason: AccessDeniedReason = fault;
  return new AccessDenied(PEER_REFUSAL_MESSAGES[fault], reason);
}

/**
 * The frame a peer sends, first and last, on a link it refuses: a fatal `error` with code `membership`
 * (14) and no commit, its text the relay's refusal text for the fault. Nothing of the space precedes it.
 *
 * @example
 * conn.send(peerRefusalFrame("removed"));
 * conn.close("refused");
 */
export function peerRefusalFrame(fault: PeerRefusal): Uint8Array {
  return encodeMessage({
    type: "error",
    code: "membership",
    message: MEMBERSHIP_REFUSALS[fault],
    fatal: true,
  });
}

/** `AccessDenied` when `m` is a peer's refusal of this device (see `peerRefusalFrame`), else undefined. */
export function peerRefusalIn(m: Message): AccessDenied | undefined {
  if (m.type !== "error" || m.code !== "membership" || !m.fatal || m.device !== undefined) return undefined;
  return peerAccessDenied(m.message);
}

/**
 * Per space, this device's membership state as peer links need it, read again only when the space's
 * log gained or lost operations (one count per check: links check before every send).
 *
 * @example
 * const gate = new PeerGate(dexie);
 * const refusal = await gate.check(space, peerDevice);
 */
export class PeerGate {
  readonly #dexie: Dexie;
  readonly #held = new Map<string, { count: number; state: Promise<MembershipState | undefined> }>();

  constructor(dexie: Dexie) {
    this.#dexie = dexie;
  }

  /** Why `device` may not sync `space` with this device over a peer link, or undefined if it may. */
  async check(space: SpaceId, device: string): Promise<PeerRefusal | undefined> {
    const count = await this.#dexie.table<MemberRow>("_members").where("space").equals(space).count();
    let held = this.#held.get(space);
    if (!held || held.count !== count) {
      const state = readMembership(this.#dexie, space);
      held = { count, state };
      this.#held.set(space, held);
      // A failed read is not kept: the next check reads again.
      state.catch(() => {
        if (this.#held.get(space)?.state === state) this.#held.delete(space);
      });
    }
    return peerAdmission(await held.state, device, Date.now());
  }

  /** Forgets a space (left, or the network stopped). */
  forget(space: SpaceId): void {
    this.#held.delete(space);
  }
}
