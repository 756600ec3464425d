import { subtle } from "../crypto/subtle.ts";
import { sha256 } from "../crypto/sha256.ts";
import { toHex } from "../ids.ts";
import { ID_BYTES } from "../protocol/limits.ts";
import type { DeviceId } from "../types.ts";

/**
 * A device's keys: an Ed25519 key that signs every commit it makes, and an X25519 key that later space
 * keys are sealed to. The private keys are non-extractable WebCrypto keys: IndexedDB keeps them as
 * opaque `CryptoKey` objects that script can use but never read, so an XSS can sign while the page is
 * open but cannot carry the keys away.
 */
export interface DeviceIdentity {
  /** The device id: the first 16 bytes of SHA-256 of `signingPublic`, as hex. */
  device: DeviceId;
  /** Private Ed25519 key (non-extractable). */
  signingKey: CryptoKey;
  /** Raw Ed25519 public key, 32 bytes: carried in every commit this device signs. */
  signingPublic: Uint8Array;
  /** Private X25519 key (non-extractable). */
  agreementKey: CryptoKey;
  /** Raw X25519 public key, 32 bytes. */
  agreementPublic: Uint8Array;
}

/**
 * The device id that belongs to an Ed25519 public key: the first 16 bytes of its SHA-256, as hex. Every
 * receiver checks a commit's device against its author key this way, so nobody can write as a device
 * without that device's private key.
 *
 * @example
 * if ((await deviceIdOf(header.author)) !== toHex(header.device)) throw new SignatureInvalid(...);
 */
export async function deviceIdOf(signingPublic: Uint8Array): Promise<DeviceId> {
  return toHex((await sha256(signingPublic)).subarray(0, ID_BYTES)) as DeviceId;
}

/**
 * Generates a new device identity in WebCrypto (throws `InsecureContext` without it). `extractable` is
 * for a locked database only, which stores the private keys encrypted as bytes (see `lock/`).
 *
 * @example
 * const identity = await generateIdentity();
 */
export async function generateIdentity(extractable = false): Promise<DeviceIdentity> {
  const s = subtle();
  const [signing, agreement] = await Promise.all([
    s.generateKey({ name: "Ed25519" }, extractable, ["sign", "verify"]) as Promise<CryptoKeyPair>,
    s.generateKey({ name: "X25519" }, extractable, ["deriveBits"]) as Promise<CryptoKeyPair>,
  ]);
  return identityOf(signing, agreement);
}

/** Completes an identity from its two key pairs (public keys are always extractable). */
export async function identityOf(signing: CryptoKeyPair, agreement: CryptoKeyPair): Promise<DeviceIdentity> {
  const s = subtle();
  const [signingPublic, agreementPublic] = await Promise.all([
    s.exportKey("raw", signing.publicKey).then((b) => new Uint8Array(b)),
    s.exportKey("raw", agreement.publicKey).then((b) => new Uint8Array(b)),
  ]);
  return {
    device: await deviceIdOf(signingPublic),
    signingKey: signing.privateKey,
    signingPublic,
    agreementKey: agreement.privateKey,
    agreementPublic,
  };
}

/**
 * A new identity, or `undefined` where WebCrypto (or its Ed25519 and X25519) is missing: a page in an
 * insecure context still gets a working local database, only without the keys that sync needs.
 */
export async function generateIdentityIfPossible(): Promise<DeviceIdentity | undefined> {
  try {
    return await generateIdentity();
  } catch {
    return undefined;
  }
}
