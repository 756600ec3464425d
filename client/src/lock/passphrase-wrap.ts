import { subtle } from "../crypto/subtle.ts";
import { ValidationError, WrongPassphrase } from "../errors.ts";

/** PBKDF2-SHA-256 iterations: OWASP's recommendation for it (2023 cheat sheet). */
export const DEFAULT_ITERATIONS = 600_000;
/** The fewest iterations `lock.iterations` accepts (tests use few; a real app keeps the default). */
export const MIN_ITERATIONS = 1_000;

/**
 * How a locked database keeps its data key (in clear in `_meta`, under the key `lock`): wrapped with
 * AES-256-GCM under a key derived from the passphrase by PBKDF2-SHA-256 with this salt and count. It
 * holds nothing that opens the data without the passphrase.
 */
export interface LockRecord {
  readonly version: 1;
  readonly kdf: "PBKDF2-SHA-256";
  readonly iterations: number;
  /** 16 random bytes, per database (and new at each passphrase change). */
  readonly salt: Uint8Array;
  /** 12 random bytes. */
  readonly iv: Uint8Array;
  /** The 32-byte data key encrypted, with its 16-byte tag. */
  readonly wrapped: Uint8Array;
}

function checkPassphrase(passphrase: unknown): string {
  if (typeof passphrase !== "string" || passphrase.length === 0)
    throw new ValidationError("A lock needs a passphrase (a non-empty string).");
  return passphrase;
}

async function keyOf(passphrase: string, salt: Uint8Array, iterations: number): Promise<CryptoKey> {
  const s = subtle();
  const material = await s.importKey("raw", new TextEncoder().encode(passphrase), "PBKDF2", false, [
    "deriveKey",
  ]);
  return s.deriveKey(
    { name: "PBKDF2", hash: "SHA-256", salt: salt.slice(), iterations },
    material,
    { name: "AES-GCM", length: 256 },
    false,
    ["encrypt", "decrypt"],
  );
}

// The additional data binds the wrapped key to its record's parameters: a record whose count was
// lowered on disk no longer opens.
function aadOf(iterations: number): Uint8Array<ArrayBuffer> {
  return new TextEncoder().encode(`shoal/v1/at-rest-lock/PBKDF2-SHA-256/${iterations}`);
}

/**
 * Wraps `dataKey` under `passphrase` with a new salt and IV.
 *
 * @example
 * const record = await wrapDataKey(crypto.getRandomValues(new Uint8Array(32)), "correct horse");
 */
export async function wrapDataKey(
  dataKey: Uint8Array,
  passphrase: string,
  iterations = DEFAULT_ITERATIONS,
): Promise<LockRecord> {
  if (!Number.isInteger(iterations) || iterations < MIN_ITERATIONS)
    throw new ValidationError(`lock.iterations must be an integer of at least ${MIN_ITERATIONS}.`);
  const salt = crypto.getRandomValues(new Uint8Array(16));
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const kek = await keyOf(checkPassphrase(passphrase), salt, iterations);
  const wrapped = await subtle().encrypt(
    { name: "AES-GCM", iv, additionalData: aadOf(iterations).slice() },
    kek,
    dataKey.slice(),
  );
  return { version: 1, kdf: "PBKDF2-SHA-256", iterations, salt, iv, wrapped: new Uint8Array(wrapped) };
}

/** The data key `record` wraps, or `WrongPassphrase` (nothing else tells a wrong passphrase apart). */
export async function unwrapDataKey(record: LockRecord, passphrase: string): Promise<Uint8Array> {
  if (record?.version !== 1 || record.kdf !== "PBKDF2-SHA-256")
    throw new ValidationError("This database's lock was made by a newer version of Shoal.");
  const kek = await keyOf(checkPassphrase(passphrase), record.salt, record.iterations);
  try {
    const key = await subtle().decrypt(
      { name: "AES-GCM", iv: record.iv.slice(), additionalData: aadOf(record.iterations).slice() },
      kek,
      record.wrapped.slice(),
    );
    return new Uint8Array(key);
  } catch {
    throw new WrongPassphrase();
  }
}
