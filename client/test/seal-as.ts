import { deriveCommitKey, deriveNonceKey } from "../src/crypto/keys.ts";
import { sealCommit } from "../src/crypto/seal.ts";
import { deviceIdOf, type DeviceIdentity } from "../src/identity/device-identity.ts";
import { identityFromSeed, signingKeyFromSeed } from "../src/identity/identity-from-seed.ts";
import { SIGNING_LABELS, signBytes } from "../src/identity/signing.ts";
import {
  COMMIT_FORMAT_VERSION,
  appendSignature,
  encodeCommitHeader,
  fromHex,
  unsignedCommit,
  type CommitHeader,
} from "../src/protocol/index.ts";

/** The part of a device identity that signs commits: all `sealAs` needs. */
export type SigningIdentity = Pick<DeviceIdentity, "device" | "signingKey" | "signingPublic">;

/** The header fields a forger chooses; the rest come from the identity. */
export interface ForgedHeader {
  space: Uint8Array;
  seq: number;
  prevHash: Uint8Array;
  epoch?: number;
}

/**
 * Test support: seals `plaintext` with the space key and signs it as `identity`'s device, exactly as a
 * member holding that device's keys could (any content, any seq, any chain hash). `tamper` may change
 * the header before sealing (a forged version or device, say), in which case the commit no longer
 * matches its author.
 *
 * @example
 * const sealed = await sealAs(mallory, spaceKey, { space, seq: 1, prevHash: new Uint8Array(32) }, bytes);
 */
export async function sealAs(
  identity: SigningIdentity,
  spaceKey: Uint8Array,
  h: ForgedHeader,
  plaintext: Uint8Array,
  tamper?: (header: CommitHeader) => CommitHeader,
): Promise<Uint8Array> {
  let header: CommitHeader = {
    version: COMMIT_FORMAT_VERSION,
    space: h.space,
    device: fromHex(identity.device, 16),
    seq: h.seq,
    epoch: h.epoch ?? 0,
    prevHash: h.prevHash,
    author: identity.signingPublic,
  };
  if (tamper) header = tamper(header);
  const body = await sealCommit(
    await deriveCommitKey(spaceKey, header.device, header.epoch),
    encodeCommitHeader(header),
    plaintext,
    await deriveNonceKey(spaceKey, header.device, header.epoch),
  );
  const unsigned = unsignedCommit(header, body);
  return appendSignature(unsigned, await signBytes(identity.signingKey, SIGNING_LABELS.commit, unsigned));
}

/**
 * A reproducible test identity for `n` (the seed is `n` as 4 bytes, then zeros).
 *
 * @example
 * const device = (await testIdentity(7)).device;
 */
export function testIdentity(n: number): Promise<DeviceIdentity> {
  return identityFromSeed(testSeed(n));
}

/**
 * The signing half of `testIdentity(n)` (the same device, key and signatures), without its X25519 key:
 * about half the WebCrypto work, for tests that make up thousands of devices that only sign.
 *
 * @example
 * const { device } = await testSigningIdentity(7); // (await testIdentity(7)).device
 */
export async function testSigningIdentity(n: number): Promise<SigningIdentity> {
  const { privateKey, publicKey } = await signingKeyFromSeed(testSeed(n));
  return { device: await deviceIdOf(publicKey), signingKey: privateKey, signingPublic: publicKey };
}

/** `n` as 4 big-endian bytes, then zeros. */
function testSeed(n: number): Uint8Array {
  const seed = new Uint8Array(32);
  new DataView(seed.buffer).setUint32(0, n);
  return seed;
}
