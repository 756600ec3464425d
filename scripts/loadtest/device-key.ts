import { createHash, generateKeyPairSync, sign, type KeyObject } from "node:crypto";
import {
  ID_BYTES,
  SIGNING_LABELS,
  appendSignature,
  signedMessage,
  toHex,
  type CommitHeader,
  unsignedCommit,
} from "@shoal/client/protocol";

/**
 * A simulated device's signing identity: an Ed25519 key pair and the device id derived from it. The
 * relay refuses a commit whose device id is not the first 16 bytes of SHA-256 of its author key, or
 * whose signature does not verify, so every simulated writer signs like a real client.
 */
export interface DeviceKey {
  /** Device id, hex: the first 16 bytes of SHA-256 of `author`. */
  device: string;
  /** Raw 32-byte Ed25519 public key, carried in every commit header. */
  author: Uint8Array;
  privateKey: KeyObject;
}

/**
 * A new device key, made with node:crypto (synchronously: a load run makes thousands).
 *
 * @example
 * const key = newDeviceKey();
 * const hello = { type: "hello", minVersion: 2, maxVersion: 2, device: fromHex(key.device, 16) };
 */
export function newDeviceKey(): DeviceKey {
  const { publicKey, privateKey } = generateKeyPairSync("ed25519");
  // An Ed25519 SubjectPublicKeyInfo ends with the raw 32-byte key (RFC 8410).
  const author = new Uint8Array(publicKey.export({ format: "der", type: "spki" }).subarray(-32));
  const device = toHex(new Uint8Array(createHash("sha256").update(author).digest()).subarray(0, ID_BYTES));
  return { device, author, privateKey };
}

/**
 * The whole sealed commit for `header` and `body`, signed with `key` as the client signs it (over the
 * commit label, PROTOCOL.md "Sealed commit").
 *
 * @example
 * const commit = signedCommit(key, header, body);
 * ws.send(encodeMessage({ type: "commits", space, commits: [commit], more: false }));
 */
export function signedCommit(key: DeviceKey, header: CommitHeader, body: Uint8Array): Uint8Array {
  const unsigned = unsignedCommit(header, body);
  const signature = sign(null, signedMessage(SIGNING_LABELS.commit, unsigned), key.privateKey);
  return appendSignature(unsigned, new Uint8Array(signature));
}
