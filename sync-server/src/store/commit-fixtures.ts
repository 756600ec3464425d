import { createHash, generateKeyPairSync, randomBytes, sign, type KeyObject } from "node:crypto";
import {
  COMMIT_FORMAT_VERSION,
  ID_BYTES,
  SIGNING_LABELS,
  appendSignature,
  decodeSealedCommit,
  fromHex,
  signedMessage,
  toHex,
  unsignedCommit,
} from "@shoal/client/protocol";

/** A test device's Ed25519 keys: the raw public key goes in every commit header, the private one signs. */
export interface TestDeviceKeys {
  /** Raw 32-byte Ed25519 public key. */
  author: Uint8Array;
  privateKey: KeyObject;
}

// Every device made by `testDevice`, by id: `makeChain` signs with its key, as the relay requires.
const devices = new Map<string, TestDeviceKeys>();

/**
 * Test support: a new device with a real Ed25519 key pair, registered so that `makeChain` can sign its
 * commits. Returns the device id (hex), derived from the public key as the protocol requires (the first
 * 16 bytes of its SHA-256).
 *
 * @example
 * const d = testDevice();
 * const chain = makeChain(spaceHex, d, 3);
 */
export function testDevice(): string {
  const { publicKey, privateKey } = generateKeyPairSync("ed25519");
  // The last 32 bytes of an Ed25519 SPKI are the raw key (RFC 8410).
  const author = new Uint8Array(publicKey.export({ format: "der", type: "spki" }).subarray(-32));
  const device = toHex(sha256(author).subarray(0, ID_BYTES));
  devices.set(device, { author, privateKey });
  return device;
}

/**
 * Test support: makes a device of given keys known to `makeChain` (a device whose key comes from a
 * seed, to sign both its membership operations and its commits). Returns its device id (hex).
 *
 * @example
 * const d = registerTestDevice(identity.signingPublic, privateKeyFromSeed(seed));
 */
export function registerTestDevice(author: Uint8Array, privateKey: KeyObject): string {
  const device = toHex(sha256(author).subarray(0, ID_BYTES));
  devices.set(device, { author: author.slice(), privateKey });
  return device;
}

/**
 * Test support: the keys of a device made by `testDevice` (to sign a commit by hand, or to put another
 * device's key in a forged header). Throws for a device it did not make.
 *
 * @example
 * const { author, privateKey } = deviceKeys(d);
 */
export function deviceKeys(device: string): TestDeviceKeys {
  const keys = devices.get(device);
  if (!keys)
    throw new Error(
      `Test device ${device} has no signing key. Make devices that sign with testDevice() (not ` +
        `randomId()): the relay refuses commits whose device id is not derived from a key that signed them.`,
    );
  return keys;
}

/**
 * Test support: a chain of valid sealed commits for one device made by `testDevice`, signed with its
 * key, with random bodies standing in for ciphertext (the relay never looks inside). Used by the store
 * contract and the relay tests.
 *
 * @example
 * const [c1, c2] = makeChain(spaceHex, testDevice(), 2);
 */
export function makeChain(
  space: string,
  device: string,
  count: number,
  options: {
    from?: number;
    prevHash?: Uint8Array;
    bodyBytes?: number;
    /** The header's key epoch (0 unless given; `MEMBERSHIP_EPOCH` for membership commits). */
    epoch?: number;
    /** The commits' bodies, one per commit, instead of random bytes. */
    bodies?: readonly Uint8Array[];
  } = {},
): Uint8Array[] {
  const { author, privateKey } = deviceKeys(device);
  const out: Uint8Array[] = [];
  let prevHash = options.prevHash ?? new Uint8Array(32);
  const from = options.from ?? 1;
  for (let seq = from; seq < from + count; seq++) {
    const body = options.bodies?.[seq - from] ?? new Uint8Array(randomBytes(options.bodyBytes ?? 40));
    const header = {
      version: COMMIT_FORMAT_VERSION,
      space: fromHex(space, 16),
      device: fromHex(device, 16),
      seq,
      epoch: options.epoch ?? 0,
      prevHash,
      author,
    };
    const bytes = signCommit(unsignedCommit(header, body), privateKey);
    out.push(bytes);
    prevHash = sha256(bytes);
  }
  return out;
}

/**
 * Test support: another commit its device signed at the same (space, device, seq), with the same routing
 * header (but the epoch, when `options.epoch` is given) and length, and a new random body. It is what
 * the replace rule lets an author swap for its stored head, and what the relay now stores instead of a
 * copy damaged in transit (which it refuses: its signature no longer verifies).
 *
 * @example
 * const rival = siblingCommit(chain[2]!); // stored first, then replaced by chain[2]
 */
export function siblingCommit(commit: Uint8Array, options: { epoch?: number } = {}): Uint8Array {
  const { header, body } = decodeSealedCommit(commit);
  const { privateKey } = deviceKeys(toHex(header.device));
  const rival = { ...header, epoch: options.epoch ?? header.epoch };
  return signCommit(unsignedCommit(rival, new Uint8Array(randomBytes(body.length))), privateKey);
}

/**
 * Test support: `unsigned` (from `unsignedCommit`) with its Ed25519 signature under `privateKey`
 * appended, as the client signs it.
 *
 * @example
 * const forged = signCommit(unsignedCommit(header, body), deviceKeys(other).privateKey);
 */
export function signCommit(unsigned: Uint8Array, privateKey: KeyObject): Uint8Array {
  const signature = sign(null, signedMessage(SIGNING_LABELS.commit, unsigned), privateKey);
  return appendSignature(unsigned, new Uint8Array(signature));
}

/** SHA-256 of some bytes, as a plain Uint8Array. */
export function sha256(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(createHash("sha256").update(bytes).digest());
}

/** A random 16-byte id as hex: for spaces, and for devices that never sign (use `testDevice` for those). */
export function randomId(): string {
  return toHex(new Uint8Array(randomBytes(16)));
}
