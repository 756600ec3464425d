import { concatBytes, copyBytes } from "../crypto/bytes.ts";
import { subtle } from "../crypto/subtle.ts";
import { base64urlToBytes } from "../crypto/base64url.ts";

// The HKDF labels of PROTOCOL.md 3.1 and 10 ("Keys"). An audit file carries HKDF *outputs*, never a space
// key: a commit key and nonce key per (device, epoch) it includes, a name key per epoch its log names use.
const COMMIT_KEY_LABEL = "shoal/v1/commit-key";
const NONCE_KEY_LABEL = "shoal/v1/nonce-key";
const NAME_KEY_LABEL = "shoal/v2/name-key";

/** The raw keys that open one device's commits of one epoch. */
export interface DeviceEpochKeys {
  /** Device id, 32 hex. */
  readonly device: string;
  readonly epoch: number;
  /** AES-256-GCM key (32 bytes). */
  readonly commitKey: Uint8Array;
  /** HMAC-SHA-256 key of the synthetic IV (32 bytes). */
  readonly nonceKey: Uint8Array;
}

function label(text: string): Uint8Array {
  return concatBytes(new TextEncoder().encode(text), new Uint8Array([0]));
}

async function hkdf(spaceKey: Uint8Array, info: Uint8Array): Promise<Uint8Array> {
  const ikm = await subtle().importKey("raw", copyBytes(spaceKey), "HKDF", false, ["deriveBits"]);
  const bits = await subtle().deriveBits(
    { name: "HKDF", hash: "SHA-256", salt: new Uint8Array(0), info: copyBytes(info) },
    ikm,
    256,
  );
  return new Uint8Array(bits);
}

function u32(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n);
  return b;
}

/**
 * The commit key and nonce key of `device` in `epoch`, as bytes: the same HKDF as `deriveCommitKey` and
 * `deriveNonceKey`, which keep theirs non-extractable. They open that device's commits of that epoch
 * and nothing else: HKDF is one-way, so they reveal neither the space key nor other devices' keys.
 *
 * @example
 * const keys = await deviceEpochKeys(spaceKey, device, 0);
 */
export async function deviceEpochKeys(
  spaceKey: Uint8Array,
  device: Uint8Array,
  epoch: number,
): Promise<{ commitKey: Uint8Array; nonceKey: Uint8Array }> {
  const tail = concatBytes(device, u32(epoch));
  const [commitKey, nonceKey] = await Promise.all([
    hkdf(spaceKey, concatBytes(label(COMMIT_KEY_LABEL), tail)),
    hkdf(spaceKey, concatBytes(label(NONCE_KEY_LABEL), tail)),
  ]);
  return { commitKey, nonceKey };
}

/**
 * The key that opens the sealed names of a space's membership log for one epoch (PROTOCOL.md 10,
 * "Keys"): it opens names only.
 *
 * @example
 * const k = await nameKeyBytes(spaceKey, spaceIdBytes);
 */
export function nameKeyBytes(spaceKey: Uint8Array, space: Uint8Array): Promise<Uint8Array> {
  return hkdf(spaceKey, concatBytes(label(NAME_KEY_LABEL), space));
}

/** Imports raw commit and nonce keys for `openCommit`. */
export async function importDeviceKeys(
  keys: Pick<DeviceEpochKeys, "commitKey" | "nonceKey">,
): Promise<{ key: CryptoKey; nonceKey: CryptoKey }> {
  const [key, nonceKey] = await Promise.all([
    subtle().importKey("raw", copyBytes(keys.commitKey), { name: "AES-GCM" }, false, ["decrypt"]),
    subtle().importKey("raw", copyBytes(keys.nonceKey), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]),
  ]);
  return { key, nonceKey };
}

/**
 * Opens a sealed name (`<epoch>.<base64url(nonce | ciphertext | tag)>`) with the raw name keys by
 * epoch; undefined when it does not open (no key for its epoch, or not a sealed name).
 */
export async function openNameWith(
  sealed: string,
  nameKeys: ReadonlyMap<number, Uint8Array>,
): Promise<string | undefined> {
  const dot = sealed.indexOf(".");
  const raw = dot < 1 ? undefined : nameKeys.get(Number(sealed.slice(0, dot)));
  if (!raw) return undefined;
  try {
    const bytes = base64urlToBytes(sealed.slice(dot + 1));
    const key = await subtle().importKey("raw", copyBytes(raw), { name: "AES-GCM" }, false, ["decrypt"]);
    const plain = await subtle().decrypt({ name: "AES-GCM", iv: bytes.slice(0, 12) }, key, bytes.slice(12));
    return new TextDecoder("utf-8", { fatal: true }).decode(plain);
  } catch {
    return undefined;
  }
}

/** The epoch a sealed name was sealed under, or undefined. */
export function sealedNameEpoch(sealed: unknown): number | undefined {
  if (typeof sealed !== "string") return undefined;
  const dot = sealed.indexOf(".");
  const epoch = dot < 1 ? NaN : Number(sealed.slice(0, dot));
  return Number.isInteger(epoch) && epoch >= 0 ? epoch : undefined;
}
