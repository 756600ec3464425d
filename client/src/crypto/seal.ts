import { subtle } from "./subtle.ts";
import { DecryptError } from "../errors.ts";
import { concatBytes, copyBytes } from "./bytes.ts";
import { pad, unpad, unpaddedView } from "./padding.ts";

export { sha256 } from "./sha256.ts";

/** AES-GCM nonce length in bytes (the 96 bits GCM is designed for). */
export const NONCE_BYTES = 12;
/** AES-GCM authentication tag length in bytes (full 128 bits). */
export const TAG_BYTES = 16;

/**
 * Seals a commit: pads the plaintext to its size bucket (see `paddedSize`), then encrypts it with
 * AES-256-GCM under a 12-byte nonce, binding `aad` (the commit's clear routing header) into the tag.
 * Returns nonce || ciphertext || tag, so its length is 12 + paddedSize(plaintext.length) + 16.
 *
 * Nonces are never built from the sequence number, because a device restored from an old backup would
 * reuse sequence numbers. Given `nonceKey` (see `deriveNonceKey`) the nonce is a keyed hash of the AAD
 * and padded plaintext (a synthetic IV, as in RFC 5297's idea): the same commit seals to the same bytes
 * everywhere, different commits get different nonces. Without it the nonce is random.
 *
 * @example
 * const key = await deriveCommitKey(spaceKey, deviceId, epoch);
 * const body = await sealCommit(key, headerBytes, changes);
 */
export async function sealCommit(
  key: CryptoKey,
  aad: Uint8Array,
  plaintext: Uint8Array,
  nonceKey?: CryptoKey,
): Promise<Uint8Array> {
  const padded = pad(plaintext);
  // With a nonce key the nonce is HMAC(aad || padded plaintext): a synthetic IV, deterministic for the
  // same commit and distinct for different ones. Without one, a random nonce.
  const nonce = nonceKey
    ? new Uint8Array(await subtle().sign("HMAC", nonceKey, concatBytes(aad, padded))).slice(0, NONCE_BYTES)
    : globalThis.crypto.getRandomValues(new Uint8Array(NONCE_BYTES));
  const ciphertext = await subtle().encrypt(
    { name: "AES-GCM", iv: nonce, additionalData: copyBytes(aad), tagLength: TAG_BYTES * 8 },
    key,
    padded,
  );
  return concatBytes(nonce, new Uint8Array(ciphertext));
}

/**
 * Opens what `sealCommit` sealed: checks the AES-GCM tag over `aad` and the ciphertext, then unpads.
 * Given `nonceKey`, also checks that the nonce is the synthetic one (the keyed hash of the AAD and the
 * padded plaintext), so each commit has exactly one valid encoding: a key holder cannot make a second
 * byte string for the same commit by choosing another nonce. Throws `DecryptError` on any failure.
 */
export async function openCommit(
  key: CryptoKey,
  aad: Uint8Array,
  body: Uint8Array,
  nonceKey?: CryptoKey,
): Promise<Uint8Array> {
  if (body.length < NONCE_BYTES + TAG_BYTES) {
    throw new DecryptError(`A sealed commit of ${body.length} bytes is too short to hold a nonce and a tag.`);
  }
  const plain = await decryptPadded(key, aad, body, copyBytes(body.subarray(NONCE_BYTES)));
  if (nonceKey) {
    const mac = new Uint8Array(await subtle().sign("HMAC", nonceKey, concatBytes(aad, plain)));
    let diff = 0;
    for (let i = 0; i < NONCE_BYTES; i++) diff |= mac[i]! ^ body[i]!;
    if (diff !== 0)
      throw new DecryptError(
        "A commit's nonce is not its synthetic IV: it was sealed by something other than Shoal's sealer.",
      );
  }
  return unpad(plain);
}

/**
 * Opens a large sealed blob (a snapshot) as `openCommit` does without a nonce key, sparing two copies
 * of megabytes on the main thread (issue 15: with the decryption they made one task of 130 ms at
 * 10,000 records): the ciphertext goes to WebCrypto as a view, which it copies when called (WebCrypto,
 * "get a copy of the bytes held by the buffer source"), and the plaintext is returned as a view of the
 * decrypted buffer, past its length prefix. For a blob that no caller changes afterwards.
 *
 * @example
 * const plaintext = await openSealedView(snapshotKey, aad, sealed);
 */
export async function openSealedView(key: CryptoKey, aad: Uint8Array, body: Uint8Array): Promise<Uint8Array> {
  if (body.length < NONCE_BYTES + TAG_BYTES) {
    throw new DecryptError(`A sealed blob of ${body.length} bytes is too short to hold a nonce and a tag.`);
  }
  const data =
    body.buffer instanceof ArrayBuffer
      ? new Uint8Array(body.buffer, body.byteOffset + NONCE_BYTES, body.length - NONCE_BYTES)
      : copyBytes(body.subarray(NONCE_BYTES));
  return unpaddedView(await decryptPadded(key, aad, body, data));
}

async function decryptPadded(
  key: CryptoKey,
  aad: Uint8Array,
  body: Uint8Array,
  data: Uint8Array<ArrayBuffer>,
): Promise<Uint8Array> {
  try {
    const padded = await subtle().decrypt(
      {
        name: "AES-GCM",
        iv: copyBytes(body.subarray(0, NONCE_BYTES)),
        additionalData: copyBytes(aad),
        tagLength: TAG_BYTES * 8,
      },
      key,
      data,
    );
    return new Uint8Array(padded);
  } catch (cause) {
    // WebCrypto reports every authentication failure as a bare OperationError; a key of the wrong kind
    // raises InvalidAccessError. Either way the commit cannot be trusted, so both are DecryptError.
    throw new DecryptError(undefined, { cause });
  }
}
