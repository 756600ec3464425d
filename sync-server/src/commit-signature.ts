import { createHash, createPublicKey, verify, type KeyObject } from "node:crypto";
import {
  ID_BYTES,
  SIGNING_LABELS,
  bytesEqual,
  signedMessage,
  toHex,
  type DecodedSealedCommit,
} from "@shoal/client/protocol";

/** Why a commit is not its device's: see `CommitSignatureInvalid.reason`. */
export type CommitSignatureFault = "wrong-author" | "bad-signature";

/**
 * A sealed commit that is not its device's: its device id is not derived from its author key
 * (`wrong-author`), or its signature does not verify under that key (`bad-signature`). The relay refuses
 * it with the wire error code `signature` and never stores it; `message` is the text it sends.
 *
 * @example
 * try {
 *   incomingCommit(bytes);
 * } catch (e) {
 *   if (e instanceof CommitSignatureInvalid) refuse(e.device, e.seq, e.message);
 * }
 */
export class CommitSignatureInvalid extends Error {
  override readonly name = "CommitSignatureInvalid";
  constructor(
    /** Device id of the refused commit, hex. */
    readonly device: string,
    /** Its sequence number. */
    readonly seq: number,
    /** Which check failed. */
    readonly reason: CommitSignatureFault,
  ) {
    super(FAULT_MESSAGES[reason]);
  }
}

/**
 * Checks that a decoded sealed commit is its device's, with no space key: its device id is the first
 * 16 bytes of SHA-256 of the author key in its header, and its Ed25519 signature verifies under that
 * key over `signedMessage(SIGNING_LABELS.commit, decoded.signed)`. Throws `CommitSignatureInvalid`
 * otherwise. Synchronous: it runs for every commit on the relay's hot path, and node:crypto's
 * one-shot `verify` is cheaper than a round trip through WebCrypto's promises.
 *
 * @example
 * checkCommitSignature(decodeSealedCommit(bytes)); // throws CommitSignatureInvalid for a forgery
 */
export function checkCommitSignature(decoded: DecodedSealedCommit): void {
  const { header, signed, signature } = decoded;
  const author = authorOf(header.author);
  if (!bytesEqual(author.device, header.device))
    throw new CommitSignatureInvalid(toHex(header.device), header.seq, "wrong-author");
  if (!author.key || !verifies(author.key, signedMessage(SIGNING_LABELS.commit, signed), signature))
    throw new CommitSignatureInvalid(toHex(header.device), header.seq, "bad-signature");
}

/** What the relay derives once per author key: its device id and, if it is a usable key, its KeyObject. */
interface Author {
  device: Uint8Array;
  key: KeyObject | undefined;
}

// Importing a raw key costs about as much as a verification (about 0.1 ms each on a small server), and
// a space has few devices that each sign many commits: the key and its device id are kept per author.
// Bounded, since anyone holding a token can make up keys: the oldest entry goes first, so a flood of
// made-up keys at worst makes real ones cost one import again.
const authors = new Map<string, Author>();
const MAX_CACHED_AUTHORS = 4096;

// An Ed25519 SubjectPublicKeyInfo is this fixed DER prefix followed by the raw 32-byte key (RFC 8410).
const ED25519_SPKI_PREFIX = Buffer.from("302a300506032b6570032100", "hex");

function authorOf(raw: Uint8Array): Author {
  const id = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString("base64");
  const cached = authors.get(id);
  if (cached) return cached;
  const device = new Uint8Array(createHash("sha256").update(raw).digest().subarray(0, ID_BYTES));
  let key: KeyObject | undefined;
  try {
    key = createPublicKey({ key: Buffer.concat([ED25519_SPKI_PREFIX, raw]), format: "der", type: "spki" });
  } catch {
    key = undefined; // not an encodable key: no signature can verify under it
  }
  const author = { device, key };
  if (authors.size >= MAX_CACHED_AUTHORS) authors.delete(authors.keys().next().value!);
  authors.set(id, author);
  return author;
}

/**
 * Whether `signature` is an Ed25519 signature of `message` under the raw 32-byte public key `raw`,
 * through the same bounded cache of imported keys as commit signatures (space claims use it too).
 * Never throws: a key that cannot be encoded verifies nothing.
 *
 * @example
 * if (!ed25519Verifies(creator, signedMessage(SIGNING_LABELS.relayAuth, signed), signature)) refuse();
 */
export function ed25519Verifies(raw: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  const { key } = authorOf(raw);
  return key !== undefined && verifies(key, message, signature);
}

function verifies(key: KeyObject, message: Uint8Array, signature: Uint8Array): boolean {
  try {
    return verify(null, message, key, signature);
  } catch {
    return false; // OpenSSL refusing the input is as good as a failed verification
  }
}

// Sent to the client in the `error` frame (with the commit's device and seq), so it can tell which
// rule its commit broke.
const FAULT_MESSAGES: Record<CommitSignatureFault, string> = {
  "wrong-author":
    "The commit's device id is not the one of its author key (SHA-256 of the key, first 16 bytes).",
  "bad-signature": "The commit's signature does not verify under its author key.",
};
