import { DecryptError } from "../errors.ts";
import { concatBytes, copyBytes } from "./bytes.ts";
import { pad, unpad } from "./padding.ts";

export { sha256 } from "./sha256.ts";

/** AES-GCM nonce length in bytes (the 96 bits GCM is designed for). */
export const NONCE_BYTES = 12;
/** AES-GCM authentication tag length in bytes (full 128 bits). */
export const TAG_BYTES = 16;

/**
 * Seals a commit: pads the plaintext to its size bucket (see `paddedSize`), then encrypts it with
 * AES-256-GCM under a fresh random 12-byte nonce, binding `aad` (the commit's clear routing header) into
 * the tag. Returns nonce || ciphertext || tag, so its length is 12 + paddedSize(plaintext.length) + 16.
 *
 * Random nonces rather than ones built from the sequence number, because a device restored from an old
 * backup would reuse sequence numbers; with a key per device and epoch, random 96-bit nonces stay far
 * below NIST SP 800-38D's 2^32 messages per key.
 *
 * @example
 * const key = await deriveCommitKey(spaceKey, deviceId, epoch);
 * const body = await sealCommit(key, headerBytes, changes);
 */
export async function sealCommit(
  key: CryptoKey,
  aad: Uint8Array,
  plaintext: Uint8Array,
): Promise<Uint8Array> {
  const nonce = globalThis.crypto.getRandomValues(new Uint8Array(NONCE_BYTES));
  const ciphertext = await globalThis.crypto.subtle.encrypt(
    { name: "AES-GCM", iv: nonce, additionalData: copyBytes(aad), tagLength: TAG_BYTES * 8 },
    key,
    pad(plaintext),
  );
  return concatBytes(nonce, new Uint8Array(ciphertext));
}

/**
 * Opens a body made by `sealCommit` and returns the original (unpadded) plaintext. Never returns
 * garbage: any failure to authenticate or unpad is a `DecryptError`.
 *
 * @throws {DecryptError} on a wrong key, an altered or truncated body, an altered `aad`, or bad padding.
 * @example
 * try { changes = await openCommit(key, headerBytes, body); }
 * catch (e) { if (e instanceof DecryptError) reject(commit); else throw e; }
 */
export async function openCommit(key: CryptoKey, aad: Uint8Array, body: Uint8Array): Promise<Uint8Array> {
  if (body.length < NONCE_BYTES + TAG_BYTES) {
    throw new DecryptError(`A sealed commit of ${body.length} bytes is too short to hold a nonce and a tag.`);
  }
  let padded: ArrayBuffer;
  try {
    padded = await globalThis.crypto.subtle.decrypt(
      {
        name: "AES-GCM",
        iv: copyBytes(body.subarray(0, NONCE_BYTES)),
        additionalData: copyBytes(aad),
        tagLength: TAG_BYTES * 8,
      },
      key,
      copyBytes(body.subarray(NONCE_BYTES)),
    );
  } catch (cause) {
    // WebCrypto reports every authentication failure as a bare OperationError; a key of the wrong kind
    // raises InvalidAccessError. Either way the commit cannot be trusted, so both are DecryptError.
    throw new DecryptError(undefined, { cause });
  }
  return unpad(new Uint8Array(padded));
}
