import { ProtocolError } from "../errors.ts";
import { decodeBase64Url, encodeBase64Url } from "./base64url.ts";
import { ID_BYTES, PUBLIC_KEY_BYTES, SIGNATURE_BYTES } from "./limits.ts";

/** Prefix of the subprotocol item by which a device proves who it is to a relay (PROTOCOL.md 1). */
export const DEVICE_SUBPROTOCOL_PREFIX = "shoal-device.";
/** Prefix of the subprotocol item by which a joining device shows the invitation it redeems. */
export const INVITATION_SUBPROTOCOL_PREFIX = "shoal-invitation.";
/** A device proof: signing key (32) | time in ms (u64) | signature (64). */
export const DEVICE_AUTH_BYTES = PUBLIC_KEY_BYTES + 8 + SIGNATURE_BYTES;
/** An invitation proof: the invitation's public key (32) | its redemption proof for this device (64). */
export const INVITATION_PROOF_BYTES = PUBLIC_KEY_BYTES + SIGNATURE_BYTES;
/** How far a device proof's time may be from the relay's clock, either way. */
export const DEVICE_AUTH_WINDOW_MS = 10 * 60_000;

/** Why a relay refused a device of a space that has a membership log: see `MEMBERSHIP_REFUSALS`. */
export type MembershipFault =
  | "device-auth"
  | "removed"
  | "not-member"
  | "invitation-unknown"
  | "invitation-used"
  | "invitation-expired"
  | "invitation-revoked";

/**
 * The exact texts of a relay's 403 for a device its membership log refuses (PROTOCOL.md 10), shared so
 * the client can name the reason (`AccessDenied.reason`).
 */
export const MEMBERSHIP_REFUSALS: Readonly<Record<MembershipFault, string>> = Object.freeze({
  "device-auth": "This space has members: the connection must carry a valid, current device proof.",
  removed: "This device was removed from the space.",
  "not-member": "This device is not a member of the space and shows no invitation.",
  "invitation-unknown": "The invitation is not known in this space.",
  "invitation-used": "The invitation was already used.",
  "invitation-expired": "The invitation has expired.",
  "invitation-revoked": "The invitation was revoked.",
});

/** A decoded device proof. */
export interface DeviceAuth {
  /** Raw Ed25519 public key of the device. */
  signingKey: Uint8Array;
  /** The device's clock when it signed, ms since 1970. */
  time: number;
  signature: Uint8Array;
}

/**
 * What a device proof's signature covers, after the `deviceAuth` label: the space id (16) then the
 * time (u64). Binding the space keeps a proof for one space from opening another; the time bounds
 * replay to the window.
 *
 * @example
 * const sig = await signBytes(identity.signingKey, SIGNING_LABELS.deviceAuth, deviceAuthSigned(space, now));
 */
export function deviceAuthSigned(space: Uint8Array, time: number): Uint8Array {
  if (space.length !== ID_BYTES) throw new ProtocolError("bad-field", "A space id is 16 bytes.");
  if (!Number.isSafeInteger(time) || time < 0) throw new ProtocolError("bad-field", "Bad device proof time.");
  const out = new Uint8Array(ID_BYTES + 8);
  out.set(space);
  new DataView(out.buffer).setBigUint64(ID_BYTES, BigInt(time));
  return out;
}

/**
 * The subprotocol item of a device proof.
 *
 * @example
 * offered.push(encodeDeviceAuth({ signingKey, time, signature }));
 */
export function encodeDeviceAuth(auth: DeviceAuth): string {
  if (auth.signingKey.length !== PUBLIC_KEY_BYTES || auth.signature.length !== SIGNATURE_BYTES)
    throw new ProtocolError("bad-field", "A device proof has a 32-byte key and a 64-byte signature.");
  const out = new Uint8Array(DEVICE_AUTH_BYTES);
  out.set(auth.signingKey);
  new DataView(out.buffer).setBigUint64(PUBLIC_KEY_BYTES, BigInt(auth.time));
  out.set(auth.signature, PUBLIC_KEY_BYTES + 8);
  return DEVICE_SUBPROTOCOL_PREFIX + encodeBase64Url(out);
}

/** The bytes of a device proof item's text (after its prefix), or undefined when malformed. */
export function decodeDeviceAuth(text: string): DeviceAuth | undefined {
  let bytes: Uint8Array;
  try {
    bytes = decodeBase64Url(text);
  } catch {
    return undefined;
  }
  if (bytes.length !== DEVICE_AUTH_BYTES) return undefined;
  const time = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(PUBLIC_KEY_BYTES));
  if (!Number.isSafeInteger(time)) return undefined;
  return {
    signingKey: bytes.slice(0, PUBLIC_KEY_BYTES),
    time,
    signature: bytes.slice(PUBLIC_KEY_BYTES + 8),
  };
}

/** A decoded invitation proof. */
export interface InvitationProof {
  /** The invitation's raw Ed25519 public key (its id in the membership log). */
  invitation: Uint8Array;
  /** The invitation key's redemption proof for the connecting device (as in a `redeem` operation). */
  proof: Uint8Array;
}

/**
 * The subprotocol item of an invitation proof.
 *
 * @example
 * offered.push(encodeInvitationProof({ invitation, proof }));
 */
export function encodeInvitationProof(p: InvitationProof): string {
  if (p.invitation.length !== PUBLIC_KEY_BYTES || p.proof.length !== SIGNATURE_BYTES)
    throw new ProtocolError("bad-field", "An invitation proof has a 32-byte key and a 64-byte signature.");
  const out = new Uint8Array(INVITATION_PROOF_BYTES);
  out.set(p.invitation);
  out.set(p.proof, PUBLIC_KEY_BYTES);
  return INVITATION_SUBPROTOCOL_PREFIX + encodeBase64Url(out);
}

/** The invitation proof of an item's text (after its prefix), or undefined when malformed. */
export function decodeInvitationProof(text: string): InvitationProof | undefined {
  let bytes: Uint8Array;
  try {
    bytes = decodeBase64Url(text);
  } catch {
    return undefined;
  }
  if (bytes.length !== INVITATION_PROOF_BYTES) return undefined;
  return { invitation: bytes.slice(0, PUBLIC_KEY_BYTES), proof: bytes.slice(PUBLIC_KEY_BYTES) };
}
