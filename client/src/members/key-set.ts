import { bytesToBase64url, base64urlToBytes } from "../crypto/base64url.ts";
import { concatBytes, copyBytes } from "../crypto/bytes.ts";
import { subtle } from "../crypto/subtle.ts";
import { DecryptError } from "../errors.ts";
import { fromHex, toHex } from "../protocol/hex.ts";

/**
 * A space's keys by epoch label: epoch 0 is the key the space was created with, each rotation adds one.
 * Whoever holds the newest set reads every commit of the space, old and new.
 */
export type KeySet = Map<number, Uint8Array>;

const KEY_SEAL_LABEL = "shoal/v2/key-seal";
const NAME_KEY_LABEL = "shoal/v2/name-key";
const ENTRY_BYTES = 4 + 32;

/** A key set's bytes: for each epoch in ascending order, `epoch (u32 BE) | key (32)`. */
export function encodeKeySet(keys: KeySet): Uint8Array {
  const epochs = [...keys.keys()].sort((a, b) => a - b);
  const out = new Uint8Array(epochs.length * ENTRY_BYTES);
  const view = new DataView(out.buffer);
  epochs.forEach((e, i) => {
    view.setUint32(i * ENTRY_BYTES, e);
    out.set(keys.get(e)!, i * ENTRY_BYTES + 4);
  });
  return out;
}

/** Reads `encodeKeySet`'s bytes; throws `DecryptError` on any other length. */
export function decodeKeySet(bytes: Uint8Array): KeySet {
  if (bytes.length === 0 || bytes.length % ENTRY_BYTES !== 0)
    throw new DecryptError("A sealed key set has the wrong length.");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const keys: KeySet = new Map();
  for (let at = 0; at < bytes.length; at += ENTRY_BYTES)
    keys.set(view.getUint32(at), bytes.slice(at + 4, at + ENTRY_BYTES));
  return keys;
}

function label(text: string): Uint8Array {
  return concatBytes(new TextEncoder().encode(text), new Uint8Array([0]));
}

async function wrappingKey(shared: ArrayBuffer, ephemeral: Uint8Array, recipient: Uint8Array) {
  const ikm = await subtle().importKey("raw", shared, "HKDF", false, ["deriveKey"]);
  return subtle().deriveKey(
    {
      name: "HKDF",
      hash: "SHA-256",
      salt: new Uint8Array(0),
      info: copyBytes(concatBytes(label(KEY_SEAL_LABEL), ephemeral, recipient)),
    },
    ikm,
    { name: "AES-GCM", length: 256 },
    false,
    ["encrypt", "decrypt"],
  );
}

/**
 * Seals a key set to an X25519 public key (a device's, or an invitation's): a fresh X25519 key pair,
 * ECDH with the recipient, HKDF-SHA-256 (info `"shoal/v2/key-seal"` 0x00, ephemeral public key,
 * recipient public key) to an AES-256-GCM key used once (zero nonce). Returns hex of
 * `ephemeral public key (32) | ciphertext | tag (16)`.
 *
 * @example
 * const sealed = await sealKeySet(keys, fromHex(device.agreementKey, 32));
 */
export async function sealKeySet(keys: KeySet, recipient: Uint8Array): Promise<string> {
  const s = subtle();
  const eph = (await s.generateKey({ name: "X25519" }, true, ["deriveBits"])) as CryptoKeyPair;
  const ephPublic = new Uint8Array(await s.exportKey("raw", eph.publicKey));
  const peer = await s.importKey("raw", copyBytes(recipient), { name: "X25519" }, false, []);
  const shared = await s.deriveBits({ name: "X25519", public: peer }, eph.privateKey, 256);
  const key = await wrappingKey(shared, ephPublic, recipient);
  const ct = await s.encrypt({ name: "AES-GCM", iv: new Uint8Array(12) }, key, copyBytes(encodeKeySet(keys)));
  return toHex(concatBytes(ephPublic, new Uint8Array(ct)));
}

/**
 * Opens a key set sealed by `sealKeySet` with the recipient's X25519 private key and public key.
 *
 * @throws {DecryptError} when it was not sealed to this key, or was altered.
 * @example
 * const keys = await openKeySet(rotation.keys[identity.device], identity.agreementKey, identity.agreementPublic);
 */
export async function openKeySet(
  sealedHex: string,
  privateKey: CryptoKey,
  publicKey: Uint8Array,
): Promise<KeySet> {
  try {
    const bytes = fromHex(sealedHex, sealedHex.length / 2);
    const ephPublic = bytes.slice(0, 32);
    const s = subtle();
    const peer = await s.importKey("raw", ephPublic, { name: "X25519" }, false, []);
    const shared = await s.deriveBits({ name: "X25519", public: peer }, privateKey, 256);
    const key = await wrappingKey(shared, ephPublic, publicKey);
    const plain = await s.decrypt({ name: "AES-GCM", iv: new Uint8Array(12) }, key, bytes.slice(32));
    return decodeKeySet(new Uint8Array(plain));
  } catch (e) {
    if (e instanceof DecryptError) throw e;
    throw new DecryptError("A sealed key set does not open with this device's key.");
  }
}

async function nameKey(spaceKey: Uint8Array, space: string): Promise<CryptoKey> {
  const s = subtle();
  const ikm = await s.importKey("raw", copyBytes(spaceKey), "HKDF", false, ["deriveKey"]);
  return s.deriveKey(
    {
      name: "HKDF",
      hash: "SHA-256",
      salt: new Uint8Array(0),
      info: copyBytes(concatBytes(label(NAME_KEY_LABEL), fromHex(space, 16))),
    },
    ikm,
    { name: "AES-GCM", length: 256 },
    false,
    ["encrypt", "decrypt"],
  );
}

/**
 * Seals a person's display name for a membership operation, which the relay reads: `<epoch>.<base64url
 * of nonce (12) | AES-256-GCM ciphertext and tag>` under a key derived from the epoch's space key, so
 * only members learn names.
 *
 * @example
 * const name = await sealName("Dr. Ada", keys, epoch, space);
 */
export async function sealName(name: string, keys: KeySet, epoch: number, space: string): Promise<string> {
  const spaceKey = keys.get(epoch);
  if (!spaceKey) throw new DecryptError(`No key for epoch ${epoch}.`);
  const nonce = globalThis.crypto.getRandomValues(new Uint8Array(12));
  const ct = await subtle().encrypt(
    { name: "AES-GCM", iv: nonce },
    await nameKey(spaceKey, space),
    new TextEncoder().encode(name),
  );
  return `${epoch}.${bytesToBase64url(concatBytes(nonce, new Uint8Array(ct)))}`;
}

/**
 * The name `sealName` sealed, or undefined when this device lacks the epoch's key or the text is not a
 * sealed name (a hostile member may write anything there).
 *
 * @example
 * member.name = (await openName(op.action.name, keys, space)) ?? "(unknown)";
 */
export async function openName(sealed: string, keys: KeySet, space: string): Promise<string | undefined> {
  const dot = sealed.indexOf(".");
  const epoch = Number(sealed.slice(0, dot));
  const spaceKey = keys.get(epoch);
  if (dot < 1 || !spaceKey) return undefined;
  try {
    const bytes = base64urlToBytes(sealed.slice(dot + 1));
    const plain = await subtle().decrypt(
      { name: "AES-GCM", iv: bytes.slice(0, 12) },
      await nameKey(spaceKey, space),
      bytes.slice(12),
    );
    return new TextDecoder("utf-8", { fatal: true }).decode(plain);
  } catch {
    return undefined;
  }
}
