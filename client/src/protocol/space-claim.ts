import { HASH_BYTES, ID_BYTES, PUBLIC_KEY_BYTES, SIGNATURE_BYTES } from "./limits.ts";

/** Domain label of a space id derivation: `SHA-256(label 0x00 creator salt)`, first 16 bytes. */
export const SPACE_ID_LABEL = "shoal/v2/space";
/** Random salt bytes in a space id derivation, so one creator can make many spaces. */
export const SPACE_SALT_BYTES = 16;
/** A space claim: creator public key (32) | salt (16) | Ed25519 signature (64). */
export const SPACE_CLAIM_BYTES = PUBLIC_KEY_BYTES + SPACE_SALT_BYTES + SIGNATURE_BYTES;
/** Prefix of the third offered subprotocol, which carries the space claim (PROTOCOL.md 1). */
export const CLAIM_SUBPROTOCOL_PREFIX = "shoal-claim.";

/** Why a relay refused to register an unknown space: see `SPACE_CLAIM_REFUSALS`. */
export type SpaceClaimFault = "missing" | "wrong-space" | "bad-signature";

/**
 * The exact texts of a relay's 403 when it refuses to register an unknown space (PROTOCOL.md 1): no
 * claim was offered, the claim does not derive the space id (or is not 112 bytes), or its signature
 * does not verify over the space id and the offered token. Shared so the client can tell these
 * refusals from a wrong token (`AccessDenied.reason`).
 */
export const SPACE_CLAIM_REFUSALS: Readonly<Record<SpaceClaimFault, string>> = Object.freeze({
  missing: "This space is not registered here and the connection carries no claim by its creator.",
  "wrong-space": "The claim does not match this space id.",
  "bad-signature": "The claim's signature does not verify.",
});

/** The three fields of a space claim (PROTOCOL.md 1, "Space claims"). */
export interface SpaceClaimParts {
  /** The creator's raw Ed25519 public key, 32 bytes. */
  creator: Uint8Array;
  /** The salt of the space id derivation, 16 bytes. */
  salt: Uint8Array;
  /** Ed25519 signature by `creator` over `signedMessage(SIGNING_LABELS.relayAuth, spaceClaimSigned(...))`. */
  signature: Uint8Array;
}

/**
 * The bytes whose SHA-256 starts with a self-certifying space id: UTF-8 `shoal/v2/space`, 0x00, the
 * creator's public key (32), the salt (16). Hashing is left to the caller (WebCrypto in browsers,
 * node:crypto on the relay), so this module stays synchronous and runtime-neutral.
 *
 * @example
 * const id = createHash("sha256").update(spaceIdPreimage(creator, salt)).digest().subarray(0, 16);
 */
export function spaceIdPreimage(creator: Uint8Array, salt: Uint8Array): Uint8Array<ArrayBuffer> {
  const label = new TextEncoder().encode(SPACE_ID_LABEL);
  const out = new Uint8Array(label.length + 1 + PUBLIC_KEY_BYTES + SPACE_SALT_BYTES);
  out.set(label);
  out.set(creator.subarray(0, PUBLIC_KEY_BYTES), label.length + 1);
  out.set(salt.subarray(0, SPACE_SALT_BYTES), label.length + 1 + PUBLIC_KEY_BYTES);
  return out;
}

/**
 * What a claim's signature covers, before the `relayAuth` label: the space id (16) then SHA-256 of the
 * relay access token (32). Binding the token hash means a claim registers the space only with the
 * token its creator chose; a stranger replaying the claim with another token is refused.
 *
 * @example
 * verify(null, signedMessage(SIGNING_LABELS.relayAuth, spaceClaimSigned(id, tokenHash)), key, sig);
 */
export function spaceClaimSigned(spaceId: Uint8Array, tokenHash: Uint8Array): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(ID_BYTES + HASH_BYTES);
  out.set(spaceId.subarray(0, ID_BYTES));
  out.set(tokenHash.subarray(0, HASH_BYTES), ID_BYTES);
  return out;
}

/**
 * The 112 bytes of a claim from its fields.
 *
 * @example
 * const claim = encodeSpaceClaim({ creator, salt, signature });
 */
export function encodeSpaceClaim(parts: SpaceClaimParts): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(SPACE_CLAIM_BYTES);
  out.set(parts.creator.subarray(0, PUBLIC_KEY_BYTES));
  out.set(parts.salt.subarray(0, SPACE_SALT_BYTES), PUBLIC_KEY_BYTES);
  out.set(parts.signature.subarray(0, SIGNATURE_BYTES), PUBLIC_KEY_BYTES + SPACE_SALT_BYTES);
  return out;
}

/**
 * The fields of a claim, or `undefined` when it is not exactly 112 bytes. Nothing is verified here.
 *
 * @example
 * const parts = decodeSpaceClaim(claim); // { creator, salt, signature } or undefined
 */
export function decodeSpaceClaim(claim: Uint8Array): SpaceClaimParts | undefined {
  if (claim.length !== SPACE_CLAIM_BYTES) return undefined;
  const saltAt = PUBLIC_KEY_BYTES;
  const signatureAt = saltAt + SPACE_SALT_BYTES;
  return {
    creator: claim.slice(0, saltAt),
    salt: claim.slice(saltAt, signatureAt),
    signature: claim.slice(signatureAt),
  };
}
