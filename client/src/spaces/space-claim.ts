import { deriveRelayToken } from "../crypto/keys.ts";
import { sha256 } from "../crypto/sha256.ts";
import { signBytes, SIGNING_LABELS } from "../identity/signing.ts";
import type { DeviceIdentity } from "../identity/device-identity.ts";
import { toHex } from "../ids.ts";
import { decodeBase64Url } from "../protocol/base64url.ts";
import { fromHex } from "../protocol/hex.ts";
import { ID_BYTES } from "../protocol/limits.ts";
import {
  encodeSpaceClaim,
  SPACE_SALT_BYTES,
  spaceClaimSigned,
  spaceIdPreimage,
} from "../protocol/space-claim.ts";
import type { SpaceId } from "../types.ts";

/** A new space's id and the claim that lets any member register it at a relay. */
export interface ClaimedSpaceId {
  /** First 16 bytes of SHA-256(`shoal/v2/space` 0x00 creator key salt), as hex. */
  id: SpaceId;
  /** 112 bytes: creator key (32) | salt (16) | Ed25519 signature (64), PROTOCOL.md 1. */
  claim: Uint8Array;
}

/**
 * The self-certifying id of a space made by the holder of `creator` (raw Ed25519 public key) with
 * `salt` (16 random bytes): the first 16 bytes of SHA-256(UTF-8 `shoal/v2/space`, 0x00, creator, salt).
 * A relay recomputes it from a claim, so nobody can register an id derived from someone else's key.
 *
 * @example
 * const id = await deriveSpaceId(identity.signingPublic, salt);
 */
export async function deriveSpaceId(creator: Uint8Array, salt: Uint8Array): Promise<SpaceId> {
  return toHex((await sha256(spaceIdPreimage(creator, salt))).subarray(0, ID_BYTES)) as SpaceId;
}

/**
 * Makes a new space id from this device's signing key and a fresh salt, and signs its claim: the
 * creator's signature (label `shoal/v2/relay-auth`) over the space id and SHA-256 of the relay token
 * derived from `spaceKey`. Done once, at creation: only the creator holds the key, and every member
 * receives the claim through the invitation link to re-register the space after a relay lost it.
 *
 * @example
 * const { id, claim } = await claimNewSpace(replica.identity, key);
 */
export async function claimNewSpace(
  identity: Pick<DeviceIdentity, "signingKey" | "signingPublic">,
  spaceKey: Uint8Array,
): Promise<ClaimedSpaceId> {
  const salt = globalThis.crypto.getRandomValues(new Uint8Array(SPACE_SALT_BYTES));
  const id = await deriveSpaceId(identity.signingPublic, salt);
  const idBytes = fromHex(id, ID_BYTES);
  const token = decodeBase64Url(await deriveRelayToken(spaceKey, idBytes));
  const signed = spaceClaimSigned(idBytes, await sha256(token));
  const signature = await signBytes(identity.signingKey, SIGNING_LABELS.relayAuth, signed);
  return { id, claim: encodeSpaceClaim({ creator: identity.signingPublic, salt, signature }) };
}
