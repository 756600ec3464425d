import { subtle } from "./subtle.ts";
import { ValidationError } from "../errors.ts";
import { bytesToBase64url } from "./base64url.ts";
import { concatBytes, copyBytes } from "./bytes.ts";
import { bytesToHex } from "./hex.ts";
import { sha256 } from "./sha256.ts";

/** Length in bytes of a space key. */
export const SPACE_KEY_BYTES = 32;
/** Length in bytes of space and device ids. */
export const ID_BYTES = 16;

// HKDF `info` labels. Versioned so that a future derivation can never collide with a v1 one, and distinct
// so that the relay token (which the relay sees) reveals nothing about the commit keys. A 0x00 byte ends
// each label; what follows has a fixed length, so the encoding is unambiguous.
const NONCE_KEY_LABEL = "shoal/v1/nonce-key";
const COMMIT_KEY_LABEL = "shoal/v1/commit-key";
const RELAY_TOKEN_LABEL = "shoal/v1/relay-token";
const SNAPSHOT_KEY_LABEL = "shoal/v1/snapshot-key";
const SIGNAL_KEY_LABEL = "shoal/v1/signal-key";

// The space key is already 32 uniformly random bytes, so HKDF-Extract needs no salt (RFC 5869 section
// 3.1); an empty salt keeps derivations reproducible from the key alone, which is all a joining device has.
const NO_SALT = new Uint8Array(0);

const CACHE_LIMIT = 64;
const commitKeyCache = new Map<string, Promise<CryptoKey>>();

/**
 * A new random space key: 32 bytes from the platform CSPRNG.
 *
 * @example
 * const key = randomSpaceKey(); // keep it on the device; share it only through an invitation link
 */
export function randomSpaceKey(): Uint8Array {
  return globalThis.crypto.getRandomValues(new Uint8Array(SPACE_KEY_BYTES));
}

/**
 * 16 random bytes, the form of space and device ids (random, so they reveal nothing and never collide).
 *
 * @example
 * const spaceId = bytesToHex(randomId16()); // 32 hex characters
 */
export function randomId16(): Uint8Array {
  return globalThis.crypto.getRandomValues(new Uint8Array(ID_BYTES));
}

/**
 * Derives the AES-256-GCM key a device seals its commits with in one space and key epoch:
 * HKDF-SHA-256(ikm = space key, salt = empty, info = "shoal/v1/commit-key" 0x00 device(16) epoch(u32 BE)).
 *
 * Each device gets its own key, so two devices never encrypt under the same key and their random nonces
 * can never collide under one key. The key is non-extractable: script can use it but never read it.
 * Results are cached (bounded, least recently used first out) because a device seals and opens many
 * commits with the same few keys; the cache is keyed by a hash, so it holds no copy of the space key.
 *
 * @throws {ValidationError} on a space key that is not 32 bytes, a device id that is not 16 bytes, or an
 *   epoch that is not an integer in 0..2^32-1.
 * @example
 * const key = await deriveCommitKey(spaceKey, deviceId, 0);
 * const body = await sealCommit(key, header, plaintext);
 */
export async function deriveCommitKey(
  spaceKey: Uint8Array,
  device: Uint8Array,
  epoch: number,
): Promise<CryptoKey> {
  const info = deviceInfo(COMMIT_KEY_LABEL, spaceKey, device, epoch);
  return derivedKey(spaceKey, info, { name: "AES-GCM", length: 256 }, ["encrypt", "decrypt"]);
}

/**
 * Derives the HMAC-SHA-256 key a device computes its commits' nonces with (a synthetic IV):
 * HKDF-SHA-256(ikm = space key, salt = empty, info = "shoal/v1/nonce-key" 0x00 device(16) epoch(u32 BE)).
 *
 * With it, sealing is deterministic: the same commit always seals to the same bytes, so two tabs or a
 * re-upload after a relay wipe produce byte-identical commits the relay accepts as duplicates, while two
 * different plaintexts never share a nonce even if a restored backup reuses a sequence number.
 *
 * @example
 * const nonceKey = await deriveNonceKey(spaceKey, deviceId, 0);
 * const body = await sealCommit(key, aad, plaintext, nonceKey);
 */
export async function deriveNonceKey(
  spaceKey: Uint8Array,
  device: Uint8Array,
  epoch: number,
): Promise<CryptoKey> {
  const info = deviceInfo(NONCE_KEY_LABEL, spaceKey, device, epoch);
  return derivedKey(spaceKey, info, { name: "HMAC", hash: "SHA-256", length: 256 }, ["sign"]);
}

function deviceInfo(
  labelText: string,
  spaceKey: Uint8Array,
  device: Uint8Array,
  epoch: number,
): Uint8Array<ArrayBuffer> {
  checkLength(spaceKey, SPACE_KEY_BYTES, "space key");
  checkLength(device, ID_BYTES, "device id");
  if (!Number.isInteger(epoch) || epoch < 0 || epoch > 0xffffffff) {
    throw new ValidationError(`A key epoch must be an integer from 0 to 2^32-1, got ${epoch}.`);
  }
  const epochBytes = new Uint8Array(4);
  new DataView(epochBytes.buffer).setUint32(0, epoch);
  return concatBytes(label(labelText), device, epochBytes);
}

/**
 * Derives a space's relay access token: 32 bytes of
 * HKDF-SHA-256(ikm = space key, salt = empty, info = "shoal/v1/relay-token" 0x00 space id(16)),
 * as 43 characters of unpadded base64url.
 *
 * Every member derives the same token from the key, so the relay can admit members without knowing the
 * key; the relay stores only the token's SHA-256. Only URL-safe characters, because it travels as the
 * `Sec-WebSocket-Protocol` value `shoal-token.<token>`, where `+ / =` are not allowed.
 *
 * @throws {ValidationError} on a space key that is not 32 bytes or a space id that is not 16 bytes.
 * @example
 * const token = await deriveRelayToken(spaceKey, hexToBytes(spaceId));
 * new WebSocket(url, [`shoal-token.${token}`]);
 */
export async function deriveRelayToken(spaceKey: Uint8Array, spaceId: Uint8Array): Promise<string> {
  checkLength(spaceKey, SPACE_KEY_BYTES, "space key");
  checkLength(spaceId, ID_BYTES, "space id");
  const ikm = await importIkm(spaceKey);
  const bits = await subtle().deriveBits(
    { name: "HKDF", hash: "SHA-256", salt: NO_SALT, info: concatBytes(label(RELAY_TOKEN_LABEL), spaceId) },
    ikm,
    256,
  );
  return bytesToBase64url(new Uint8Array(bits));
}

/**
 * Derives the AES-256-GCM key snapshots of a space are sealed with:
 * HKDF-SHA-256(ikm = space key, salt = empty, info = "shoal/v1/snapshot-key" 0x00 space id(16)).
 * Snapshots use random nonces: each is sealed once, by one device, and never needs to be byte-identical.
 *
 * @example
 * const key = await deriveSnapshotKey(spaceKey, hexToBytes(spaceId));
 */
export async function deriveSnapshotKey(spaceKey: Uint8Array, spaceId: Uint8Array): Promise<CryptoKey> {
  checkLength(spaceKey, SPACE_KEY_BYTES, "space key");
  checkLength(spaceId, ID_BYTES, "space id");
  const info = concatBytes(label(SNAPSHOT_KEY_LABEL), spaceId);
  return derivedKey(spaceKey, info, { name: "AES-GCM", length: 256 }, ["encrypt", "decrypt"]);
}

/**
 * HKDF-SHA-256(space key, empty salt, info) into a non-extractable key, cached by a hash of the inputs
 * (so the cache never holds the space key itself).
 */
function derivedKey(
  spaceKey: Uint8Array,
  info: Uint8Array<ArrayBuffer>,
  algorithm: AesKeyGenParams | HmacKeyGenParams,
  usages: KeyUsage[],
): Promise<CryptoKey> {
  return cached(concatBytes(spaceKey, info), async () => {
    const ikm = await importIkm(spaceKey);
    return subtle().deriveKey(
      { name: "HKDF", hash: "SHA-256", salt: NO_SALT, info },
      ikm,
      algorithm,
      false,
      usages,
    );
  });
}

/**
 * Derives the AES-256-GCM key WebRTC signalling payloads of a space are sealed with:
 * HKDF-SHA-256(ikm = space key, salt = empty, info = "shoal/v1/signal-key" 0x00 space id(16)).
 *
 * @example
 * const key = await deriveSignalKey(spaceKey, hexToBytes(spaceId));
 */
export function deriveSignalKey(spaceKey: Uint8Array, spaceId: Uint8Array): Promise<CryptoKey> {
  checkLength(spaceKey, SPACE_KEY_BYTES, "space key");
  checkLength(spaceId, ID_BYTES, "space id");
  const info = concatBytes(label(SIGNAL_KEY_LABEL), spaceId);
  return derivedKey(spaceKey, info, { name: "AES-GCM", length: 256 }, ["encrypt", "decrypt"]);
}

function label(text: string): Uint8Array {
  return concatBytes(new TextEncoder().encode(text), new Uint8Array([0]));
}

function importIkm(spaceKey: Uint8Array): Promise<CryptoKey> {
  return subtle().importKey("raw", copyBytes(spaceKey), "HKDF", false, [
    "deriveKey",
    "deriveBits",
  ]);
}

function checkLength(bytes: Uint8Array, expected: number, what: string): void {
  if (!(bytes instanceof Uint8Array) || bytes.length !== expected) {
    throw new ValidationError(`A ${what} must be ${expected} bytes, got ${describe(bytes)}.`);
  }
}

function describe(value: unknown): string {
  return value instanceof Uint8Array ? `${value.length} bytes` : typeof value;
}

async function cached(material: Uint8Array, derive: () => Promise<CryptoKey>): Promise<CryptoKey> {
  const id = bytesToHex(await sha256(material));
  material.fill(0);
  const hit = commitKeyCache.get(id);
  if (hit) {
    // Re-insert so Map order tracks recency, and the oldest entry is the first one evicted.
    commitKeyCache.delete(id);
    commitKeyCache.set(id, hit);
    return hit;
  }
  const pending = derive();
  commitKeyCache.set(id, pending);
  // A failed derivation must not stay cached, or every later call would replay the failure.
  pending.catch(() => commitKeyCache.delete(id));
  if (commitKeyCache.size > CACHE_LIMIT) {
    commitKeyCache.delete(commitKeyCache.keys().next().value!);
  }
  return pending;
}
