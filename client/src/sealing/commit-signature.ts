import { subtle } from "../crypto/subtle.ts";
import { SignatureInvalid } from "../errors.ts";
import { deviceIdOf } from "../identity/device-identity.ts";
import { SIGNING_LABELS, verifyBytes } from "../identity/signing.ts";
import { toHex, type DecodedSealedCommit } from "../protocol/index.ts";

/** An author key's device id and imported key (`null`: not a valid Ed25519 point). */
interface Author {
  device: string;
  key: CryptoKey | null;
}

// Per author key, its device id (a SHA-256) and its import (about the cost of a verification) are
// worked out once: a space has few devices, and every commit of one names the same key.
const authors = new Map<string, Promise<Author>>();
const MAX_CACHED_AUTHORS = 1024;

function author(raw: Uint8Array): Promise<Author> {
  const hex = toHex(raw);
  const cached = authors.get(hex);
  if (cached) return cached;
  if (authors.size >= MAX_CACHED_AUTHORS) authors.clear();
  const made = Promise.all([
    deviceIdOf(raw),
    subtle()
      .importKey("raw", raw.slice(), { name: "Ed25519" }, true, ["verify"])
      .catch(() => null),
  ]).then(([device, key]) => ({ device, key }));
  authors.set(hex, made);
  return made;
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
  const { device: keyDevice, key } = await author(header.author);
  if (keyDevice !== device)
    throw new SignatureInvalid(
      `The author key of ${where} is not that device's key: the commit is refused.`,
      {
        device,
        seq: header.seq,
        reason: "wrong-author",
      },
    );
  if (!key || !(await verifyBytes(key, SIGNING_LABELS.commit, signed, signature)))
    throw new SignatureInvalid(`The signature of ${where} does not verify: the commit is refused.`, {
      device,
      seq: header.seq,
      reason: "bad-signature",
    });
}
