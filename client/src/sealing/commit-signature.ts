import { subtle } from "../crypto/subtle.ts";
import { SignatureInvalid } from "../errors.ts";
import { deviceIdOf } from "../identity/device-identity.ts";
import { SIGNING_LABELS, verifyBytes } from "../identity/signing.ts";
import { toHex, type DecodedSealedCommit } from "../protocol/index.ts";

// Importing a raw public key costs about as much as a verification; a space has few devices.
const keys = new Map<string, Promise<CryptoKey>>();
const MAX_CACHED_KEYS = 1024;

function publicKey(raw: Uint8Array): Promise<CryptoKey> | Uint8Array {
  const hex = toHex(raw);
  const cached = keys.get(hex);
  if (cached) return cached;
  if (keys.size >= MAX_CACHED_KEYS) keys.clear();
  const key = subtle().importKey("raw", raw.slice(), { name: "Ed25519" }, true, ["verify"]);
  // A key that fails to import is not cached: the verification below reports it as invalid.
  key.catch(() => keys.delete(hex));
  keys.set(hex, key);
  return key;
}

/**
 * Checks that a decoded sealed commit is its device's: the device id is the one of the author key in
 * its header (the first 16 bytes of the key's SHA-256), and the signature after the body verifies under
 * that key. Throws `SignatureInvalid` otherwise. Needs no space key, so it runs before anything is
 * decrypted; every receiver (relay session, peer link, tab, bundle import, snapshot) opens commits
 * through it.
 *
 * @example
 * await verifyCommitSignature(decodeSealedCommit(bytes));
 */
export async function verifyCommitSignature(decoded: DecodedSealedCommit): Promise<void> {
  const { header, signed, signature } = decoded;
  const device = toHex(header.device);
  const where = `commit ${header.seq} of device ${device}`;
  if ((await deviceIdOf(header.author)) !== device)
    throw new SignatureInvalid(
      `The author key of ${where} is not that device's key: the commit is refused.`,
      { device, seq: header.seq, reason: "wrong-author" },
    );
  let key: CryptoKey | Uint8Array;
  try {
    key = await publicKey(header.author);
  } catch {
    key = header.author; // not a valid Ed25519 point: verifyBytes answers false
  }
  if (!(await verifyBytes(key, SIGNING_LABELS.commit, signed, signature)))
    throw new SignatureInvalid(`The signature of ${where} does not verify: the commit is refused.`, {
      device,
      seq: header.seq,
      reason: "bad-signature",
    });
}
