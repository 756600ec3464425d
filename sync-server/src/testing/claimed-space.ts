import { createHash, generateKeyPairSync, randomBytes, sign, type KeyObject } from "node:crypto";
import {
  encodeSpaceClaim,
  ID_BYTES,
  SIGNING_LABELS,
  SPACE_SALT_BYTES,
  signedMessage,
  spaceClaimSigned,
  spaceIdPreimage,
  toHex,
} from "@shoal/client/protocol";

/** A space a test may register at a relay: its self-certifying id, its token and its claim. */
export interface ClaimedSpace {
  /** The space id, 32 lowercase hex characters, derived from `creator` and a random salt. */
  space: string;
  /** The access token the claim was signed for. */
  token: Uint8Array;
  /** The 112-byte claim: creator key | salt | signature (PROTOCOL.md 1, "Space claims"). */
  claim: Uint8Array;
  /** The creator's raw Ed25519 public key. */
  creator: Uint8Array;
  /** The creator's private key, to sign further claims (e.g. for another token). */
  privateKey: KeyObject;
}

// Every claim made by `claimedSpace`, by space id, so raw test clients can offer it (`claimOf`), as a
// real client offers the one it stores with the space.
const claims = new Map<string, Uint8Array>();

/**
 * Test support: a new space with a fresh Ed25519 creator key (or `creatorKeys`, e.g. a seeded device's,
 * so the same key can sign the space's `create` operation), its id derived from that key and a random
 * salt, and a valid claim for `token` (32 random bytes unless given). Remembered for `claimOf`.
 *
 * @example
 * const { space, token, claim } = claimedSpace();
 * new WebSocket(`${relay}/sync/${space}`, offeredSubprotocols(token, claim));
 */
export function claimedSpace(
  token: Uint8Array = new Uint8Array(randomBytes(32)),
  creatorKeys: { creator: Uint8Array; privateKey: KeyObject } = newCreator(),
): ClaimedSpace {
  const { creator, privateKey } = creatorKeys;
  const salt = new Uint8Array(randomBytes(SPACE_SALT_BYTES));
  const space = toHex(sha256(spaceIdPreimage(creator, salt)).subarray(0, ID_BYTES));
  const claim = signClaim({ creator, privateKey }, salt, space, token);
  claims.set(space, claim);
  return { space, token, claim, creator, privateKey };
}

/**
 * A claim by `creator` for `space` (its id as hex, derived or not: tests make mismatching claims too)
 * with `salt`, signed over the space id and SHA-256 of `token`.
 *
 * @example
 * const forged = signClaim(stranger, salt, victimSpace, strangerToken); // refused: wrong space
 */
export function signClaim(
  creator: { creator: Uint8Array; privateKey: KeyObject },
  salt: Uint8Array,
  space: string,
  token: Uint8Array,
): Uint8Array {
  const signed = spaceClaimSigned(Buffer.from(space, "hex"), sha256(token));
  const signature = new Uint8Array(
    sign(null, signedMessage(SIGNING_LABELS.relayAuth, signed), creator.privateKey),
  );
  return encodeSpaceClaim({ creator: creator.creator, salt, signature });
}

/**
 * The claim `claimedSpace` made for `space`, or `undefined` (a made-up id: a relay refuses to register
 * it). Test clients offer it on every connection.
 *
 * @example
 * offeredSubprotocols(token, claimOf(space));
 */
export function claimOf(space: string): Uint8Array | undefined {
  return claims.get(space);
}

function newCreator(): { creator: Uint8Array; privateKey: KeyObject } {
  const { publicKey, privateKey } = generateKeyPairSync("ed25519");
  // The last 32 bytes of an Ed25519 SPKI are the raw key (RFC 8410).
  return {
    creator: new Uint8Array(publicKey.export({ format: "der", type: "spki" }).subarray(-32)),
    privateKey,
  };
}

function sha256(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(createHash("sha256").update(bytes).digest());
}
