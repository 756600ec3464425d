import { subtle } from "../crypto/subtle.ts";
import { copyBytes } from "../crypto/bytes.ts";
import { SIGNATURE_BYTES } from "../protocol/limits.ts";
import { signedMessage as message, type SigningLabel } from "../protocol/signing-labels.ts";

export { SIGNATURE_BYTES, PUBLIC_KEY_BYTES } from "../protocol/limits.ts";
export { SIGNING_LABELS, type SigningLabel } from "../protocol/signing-labels.ts";

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
