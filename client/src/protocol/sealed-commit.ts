import { ProtocolError } from "../errors.ts";
import { ByteReader } from "./byte-reader.ts";
import { ByteWriter } from "./byte-writer.ts";
import { checkBytes } from "./field-checks.ts";
import { COMMIT_HEADER_BYTES, encodeCommitHeader, type CommitHeader } from "./commit-header.ts";
import {
  COMMIT_FORMAT_VERSION,
  HASH_BYTES,
  ID_BYTES,
  MIN_COMMIT_BODY_BYTES,
  PUBLIC_KEY_BYTES,
  SIGNATURE_BYTES,
  resolveLimits,
  type ProtocolLimits,
} from "./limits.ts";

/** Header plus the u32 body length that frames the body: 113 bytes before the body starts. */
export const SEALED_COMMIT_OVERHEAD = COMMIT_HEADER_BYTES + 4;

/** Bytes of a sealed commit besides its body: the framing before it and the signature after it. */
export const SEALED_COMMIT_FIXED_BYTES = SEALED_COMMIT_OVERHEAD + SIGNATURE_BYTES;

/**
 * A decoded sealed commit. Every byte array is a view into the input, not a copy: decoding is on the
 * relay's hot path and the relay never needs the parts apart from the whole commit.
 */
export interface DecodedSealedCommit {
  header: CommitHeader;
  /** The routing-header bytes exactly as received: pass them as AES-GCM additional data. */
  headerBytes: Uint8Array;
  /** Opaque sealed body (nonce, ciphertext, tag). */
  body: Uint8Array;
  /** What the author signed: everything before the signature (header, body length, body). */
  signed: Uint8Array;
  /** The author's Ed25519 signature over `signed` (under the commit label, see `signedMessage`). */
  signature: Uint8Array;
}

/**
 * The bytes a commit's author signs: header, u32 body length, body. `encodeSealedCommit` appends the
 * signature to exactly these bytes.
 *
 * @example
 * const unsigned = unsignedCommit(header, body);
 * const commit = encodeSealedCommit(header, body, await sign(unsigned));
 */
export function unsignedCommit(
  header: CommitHeader,
  body: Uint8Array,
  limits?: Partial<ProtocolLimits>,
): Uint8Array {
  const { maxCommitBytes } = resolveLimits(limits);
  if (!(body instanceof Uint8Array) || body.length < MIN_COMMIT_BODY_BYTES) {
    throw new ProtocolError("bad-field", `A commit body must be at least ${MIN_COMMIT_BODY_BYTES} bytes.`);
  }
  const total = SEALED_COMMIT_FIXED_BYTES + body.length;
  if (total > maxCommitBytes) {
    throw new ProtocolError("oversized", `Sealed commit of ${total} bytes exceeds ${maxCommitBytes}.`);
  }
  const w = new ByteWriter(SEALED_COMMIT_OVERHEAD + body.length);
  w.bytes(encodeCommitHeader(header));
  w.u32(body.length);
  w.bytes(body);
  return w.finish();
}

/**
 * Frames a sealed commit: header, u32 body length, body, then the author's 64-byte signature over what
 * precedes it.
 *
 * @example
 * const body = await seal(encodeCommitHeader(header), plaintext); // nonce + ciphertext + tag
 * const commit = encodeSealedCommit(header, body, await sign(unsignedCommit(header, body)));
 */
export function encodeSealedCommit(
  header: CommitHeader,
  body: Uint8Array,
  signature: Uint8Array,
  limits?: Partial<ProtocolLimits>,
): Uint8Array {
  return appendSignature(unsignedCommit(header, body, limits), signature);
}

/**
 * `unsigned` (from `unsignedCommit`) followed by its signature: the whole sealed commit.
 *
 * @example
 * const commit = appendSignature(unsigned, await signBytes(key, SIGNING_LABELS.commit, unsigned));
 */
export function appendSignature(unsigned: Uint8Array, signature: Uint8Array): Uint8Array {
  checkBytes(signature, SIGNATURE_BYTES, "commit signature");
  const out = new Uint8Array(unsigned.length + SIGNATURE_BYTES);
  out.set(unsigned);
  out.set(signature, unsigned.length);
  return out;
}

/**
 * Parses and validates a sealed commit, checking in order: size cap, length, version, fields, framing.
 * It does not verify the signature (that needs a hash and a public-key operation, see
 * `verifyCommitSignature` in the client and the relay's `incomingCommit`). Throws `ProtocolError` with
 * reason `oversized`, `truncated`, `unknown-version`, `bad-field` or `trailing-bytes`.
 *
 * @example
 * const { header, headerBytes, body } = decodeSealedCommit(bytes);
 * if (header.seq !== expected) ...
 */
export function decodeSealedCommit(bytes: Uint8Array, limits?: Partial<ProtocolLimits>): DecodedSealedCommit {
  const { maxCommitBytes } = resolveLimits(limits);
  if (bytes.length > maxCommitBytes) {
    throw new ProtocolError("oversized", `Sealed commit of ${bytes.length} bytes exceeds ${maxCommitBytes}.`);
  }
  const r = new ByteReader(bytes);
  const version = r.u8("commit version");
  if (version !== COMMIT_FORMAT_VERSION) {
    throw new ProtocolError(
      "unknown-version",
      version === 1
        ? "Commit format version 1 (unsigned) is no longer accepted: every commit must be signed by its device."
        : `Commit format version ${version} is not supported.`,
    );
  }
  const space = r.bytes(ID_BYTES, "commit space");
  const device = r.bytes(ID_BYTES, "commit device");
  const seq = r.seq("commit seq");
  const epoch = r.u32("commit epoch");
  const prevHash = r.bytes(HASH_BYTES, "commit prevHash");
  if (seq === 1 && prevHash.some((b) => b !== 0)) {
    throw new ProtocolError("bad-field", "The first commit of a device must have a zero prevHash.");
  }
  const author = r.bytes(PUBLIC_KEY_BYTES, "commit author");
  const bodyLength = r.u32("commit body length");
  if (bodyLength < MIN_COMMIT_BODY_BYTES) {
    throw new ProtocolError("bad-field", `A commit body must be at least ${MIN_COMMIT_BODY_BYTES} bytes.`);
  }
  if (r.remaining < bodyLength + SIGNATURE_BYTES)
    throw new ProtocolError("truncated", "Commit ends inside its body or signature.");
  if (r.remaining > bodyLength + SIGNATURE_BYTES) {
    throw new ProtocolError(
      "trailing-bytes",
      `${r.remaining - bodyLength - SIGNATURE_BYTES} unexpected bytes after the commit's signature.`,
    );
  }
  const signedEnd = SEALED_COMMIT_OVERHEAD + bodyLength;
  return {
    header: { version, space, device, seq, epoch, prevHash, author },
    headerBytes: bytes.subarray(0, COMMIT_HEADER_BYTES),
    body: bytes.subarray(SEALED_COMMIT_OVERHEAD, signedEnd),
    signed: bytes.subarray(0, signedEnd),
    signature: bytes.subarray(signedEnd),
  };
}
