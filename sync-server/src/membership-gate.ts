import { createHash } from "node:crypto";
import {
  DEVICE_AUTH_WINDOW_MS,
  ID_BYTES,
  MEMBERSHIP_REFUSALS,
  SIGNING_LABELS,
  deviceAuthSigned,
  fromHex,
  redemptionBytes,
  signedMessage,
  toHex,
  type DeviceAuth,
  type InvitationProof,
  type MembershipFault,
  type MembershipState,
} from "@shoal/client/protocol";
import { ed25519Verifies } from "./commit-signature.ts";

/**
 * How the relay closes the open connections of a device its space's log just removed: 4403 with the
 * reason a refused upgrade would give it (`HTTP 403: <text>`), so a client reads both alike.
 */
export const REMOVED_CLOSE = Object.freeze({
  code: 4403,
  reason: `HTTP 403: ${MEMBERSHIP_REFUSALS.removed}`,
});

/** Who a managed space lets in: a current member's device, or a device that shows a usable invitation. */
export type Admission = { device: string; as: "member" | "invitee" } | { fault: MembershipFault };

/**
 * The membership check of a connection to a space that has members (PROTOCOL.md 1, check 10), run
 * after the token check by the upgrade, the access probe and the invitation endpoint alike:
 *
 * 1. a device proof (`shoal-device.`) whose signature verifies over this space and its time, with the
 *    time within `DEVICE_AUTH_WINDOW_MS` of `now` (`device-auth` otherwise);
 * 2. the proven device is not one the log removed (`removed`);
 * 3. a current member's device is admitted;
 * 4. otherwise an invitation proof (`shoal-invitation.`; `not-member` without one, or when its proof is
 *    not the invitation key's signature for this space and device) naming an invitation of the log
 *    (`invitation-unknown`) that is not revoked (`invitation-revoked`), not expired by `now`
 *    (`invitation-expired`) and redeemed fewer times than its `uses` (`invitation-used`).
 *
 * Signatures are checked with node:crypto (synchronous, through the relay's cache of imported keys).
 *
 * @example
 * const admitted = admitDevice(space, state, offered.device, offered.invitation, Date.now());
 * if ("fault" in admitted) return refuse(403, MEMBERSHIP_REFUSALS[admitted.fault]);
 */
export function admitDevice(
  space: string,
  state: MembershipState,
  proof: DeviceAuth | undefined,
  invitation: InvitationProof | undefined,
  now: number,
): Admission {
  const device = provenDevice(space, proof, now);
  if (device === undefined) return { fault: "device-auth" };
  if (state.removedDevices.has(device)) return { fault: "removed" };
  if (state.deviceOwner.has(device)) return { device, as: "member" };
  if (!invitation) return { fault: "not-member" };
  const redeem = signedMessage(SIGNING_LABELS.redeem, redemptionBytes(space, device));
  if (!ed25519Verifies(invitation.invitation, redeem, invitation.proof)) return { fault: "not-member" };
  const held = state.invitations.get(toHex(invitation.invitation));
  if (!held) return { fault: "invitation-unknown" };
  if (held.revoked) return { fault: "invitation-revoked" };
  if (held.expires < now) return { fault: "invitation-expired" };
  if (held.redeemedBy.length >= held.uses) return { fault: "invitation-used" };
  return { device, as: "invitee" };
}

/**
 * The device id (hex) a device proof proves for `space`: its signature verifies over the space id and
 * its time, and that time is within `DEVICE_AUTH_WINDOW_MS` of `now`. `undefined` otherwise
 * (`device-auth`). Check 10's first step, and all the appeal endpoint asks before it looks at the log.
 *
 * @example
 * const device = provenDevice(space, decodeDeviceAuth(text), Date.now());
 */
export function provenDevice(space: string, proof: DeviceAuth | undefined, now: number): string | undefined {
  if (!proof || Math.abs(proof.time - now) > DEVICE_AUTH_WINDOW_MS) return undefined;
  const signed = signedMessage(
    SIGNING_LABELS.deviceAuth,
    deviceAuthSigned(fromHex(space, ID_BYTES), proof.time),
  );
  if (!ed25519Verifies(proof.signingKey, signed, proof.signature)) return undefined;
  return toHex(createHash("sha256").update(proof.signingKey).digest().subarray(0, ID_BYTES));
}
