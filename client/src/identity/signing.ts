import { subtle } from "../crypto/subtle.ts";
import { concatBytes, copyBytes } from "../crypto/bytes.ts";

/** Length of an Ed25519 signature in bytes. */
export const SIGNATURE_BYTES = 64;
/** Length of a raw Ed25519 or X25519 public key in bytes. */
export const PUBLIC_KEY_BYTES = 32;

/**
 * Domain labels of every Shoal signature. A signature is always over `label 0x00 bytes`, so one made for
 * one purpose (a relay login, say) can never be replayed as another (a commit).
 */
export const SIGNING_LABELS = {
  commit: "shoal/v2/commit",
  relayAuth: "shoal/v2/relay-auth",
  redeem: "shoal/v2/redeem",
  snapshot: "shoal/v2/snapshot",
} as const;

/** One of `SIGNING_LABELS`' values. */
export type SigningLabel = (typeof SIGNING_LABELS)[keyof typeof SIGNING_LABELS];

function message(label: SigningLabel, bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return concatBytes(new TextEncoder().encode(label), new Uint8Array([0]), bytes);
}

/**
 * Signs `label 0x00 bytes` with an Ed25519 private key. Ed25519 is deterministic: the same key and bytes
 * always give the same 64 bytes, which keeps sealing a commit reproducible.
 *
 * @example
 * const sig = await signBytes(identity.signing.privateKey, SIGNING_LABELS.commit, unsigned);
 */
export async function signBytes(
  privateKey: CryptoKey,
  label: SigningLabel,
  bytes: Uint8Array,
): Promise<Uint8Array> {
  return new Uint8Array(await subtle().sign("Ed25519", privateKey, message(label, bytes)));
}

/**
 * Whether `signature` is a valid Ed25519 signature of `label 0x00 bytes` under `publicKey` (a CryptoKey or
 * the 32 raw bytes). Never throws for bad input: a malformed key or signature is simply not valid.
 *
 * @example
 * if (!(await verifyBytes(authorKey, SIGNING_LABELS.commit, unsigned, sig))) throw new SignatureInvalid(...);
 */
export async function verifyBytes(
  publicKey: CryptoKey | Uint8Array,
  label: SigningLabel,
  bytes: Uint8Array,
  signature: Uint8Array,
): Promise<boolean> {
  if (signature.length !== SIGNATURE_BYTES) return false;
  try {
    const key = publicKey instanceof Uint8Array ? await importSigningPublicKey(publicKey) : publicKey;
    return await subtle().verify("Ed25519", key, copyBytes(signature), message(label, bytes));
  } catch {
    return false;
  }
}

/**
 * Imports 32 raw bytes as an Ed25519 public key (for verifying only).
 *
 * @example
 * const key = await importSigningPublicKey(op.signingKey);
 */
export function importSigningPublicKey(raw: Uint8Array): Promise<CryptoKey> {
  return subtle().importKey("raw", copyBytes(raw), { name: "Ed25519" }, true, ["verify"]);
}
