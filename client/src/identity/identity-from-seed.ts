import { subtle } from "../crypto/subtle.ts";
import { identityOf, type DeviceIdentity } from "./device-identity.ts";

// PKCS #8 wrappers of a raw 32-byte private key (RFC 8410): the fixed DER prefix, then the seed.
const ED25519_PKCS8 = [
  0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];
const X25519_PKCS8 = [
  0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x04, 0x22, 0x04, 0x20,
];

async function pairFromSeed(
  prefix: number[],
  seed: Uint8Array,
  algorithm: "Ed25519" | "X25519",
): Promise<CryptoKeyPair> {
  const der = new Uint8Array(prefix.length + 32);
  der.set(prefix);
  der.set(seed.subarray(0, 32), prefix.length);
  const usages: KeyUsage[] = algorithm === "Ed25519" ? ["sign"] : ["deriveBits"];
  // Extractable only long enough to derive the public key through JWK; the kept private key is not.
  const full = await subtle().importKey("pkcs8", der, { name: algorithm }, true, usages);
  const jwk = await subtle().exportKey("jwk", full);
  const privateKey = await subtle().importKey("pkcs8", der, { name: algorithm }, false, usages);
  const publicKey = await subtle().importKey(
    "jwk",
    { kty: jwk.kty, crv: jwk.crv, x: jwk.x },
    { name: algorithm },
    true,
    algorithm === "Ed25519" ? ["verify"] : [],
  );
  return { privateKey, publicKey };
}

/**
 * A device identity derived from a 32-byte seed (the X25519 key from the seed with its first byte
 * flipped), always the same for the same seed. For tests and seeded simulations, which must be able to
 * sign as a given device reproducibly; a real device uses `generateIdentity`.
 *
 * @example
 * const mallory = await identityFromSeed(new Uint8Array(32).fill(7));
 */
export async function identityFromSeed(seed: Uint8Array): Promise<DeviceIdentity> {
  const other = seed.slice(0, 32);
  other[0] = (other[0] ?? 0) ^ 0xff;
  const [signing, agreement] = await Promise.all([
    pairFromSeed(ED25519_PKCS8, seed, "Ed25519"),
    pairFromSeed(X25519_PKCS8, other, "X25519"),
  ]);
  return identityOf(signing, agreement);
}

/**
 * The Ed25519 key pair of a 32-byte seed: the private key (not extractable) and the raw public key. An
 * invitation link carries such a seed, so whoever holds the link can sign its redemption.
 *
 * @example
 * const { privateKey, publicKey } = await signingKeyFromSeed(invitationSecret);
 */
export async function signingKeyFromSeed(
  seed: Uint8Array,
): Promise<{ privateKey: CryptoKey; publicKey: Uint8Array }> {
  const pair = await pairFromSeed(ED25519_PKCS8, seed, "Ed25519");
  return {
    privateKey: pair.privateKey,
    publicKey: new Uint8Array(await subtle().exportKey("raw", pair.publicKey)),
  };
}
