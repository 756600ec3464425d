import { ProtocolError } from "../errors.ts";
import { ByteReader } from "./byte-reader.ts";
import { ByteWriter } from "./byte-writer.ts";
import { COMMIT_HEADER_BYTES, encodeCommitHeader, type CommitHeader } from "./commit-header.ts";
import {
  COMMIT_FORMAT_VERSION,
  HASH_BYTES,
  ID_BYTES,
  MIN_COMMIT_BODY_BYTES,
  resolveLimits,
  type ProtocolLimits,
} from "./limits.ts";

/** Header plus the u32 body length that frames the body: 81 bytes before the body starts. */
export const SEALED_COMMIT_OVERHEAD = COMMIT_HEADER_BYTES + 4;

/**
 * A decoded sealed commit. `headerBytes` and `body` are views into the input, not copies: decoding is
 * on the relay's hot path and the relay never needs the body apart from the whole commit.
 */
export interface DecodedSealedCommit {
  header: CommitHeader;
  /** The 77 routing-header bytes exactly as received: pass them as AES-GCM additional data. */
  headerBytes: Uint8Array;
  /** Opaque sealed body (nonce, ciphertext, tag). */
  body: Uint8Array;
}

/**
 * Frames a sealed commit: header, u32 body length, body.
 *
 * @example
 * const aad = encodeCommitHeader(header);
 * const body = await seal(aad, plaintext); // nonce + ciphertext + tag
 * const commit = encodeSealedCommit(header, body);
 */
export function encodeSealedCommit(
  header: CommitHeader,
  body: Uint8Array,
  limits?: Partial<ProtocolLimits>,
): Uint8Array {
  const { maxCommitBytes } = resolveLimits(limits);
  if (!(body instanceof Uint8Array) || body.length < MIN_COMMIT_BODY_BYTES) {
    throw new ProtocolError("bad-field", `A commit body must be at least ${MIN_COMMIT_BODY_BYTES} bytes.`);
  }
  const total = SEALED_COMMIT_OVERHEAD + body.length;
  if (total > maxCommitBytes) {
    throw new ProtocolError("oversized", `Sealed commit of ${total} bytes exceeds ${maxCommitBytes}.`);
  }
  const w = new ByteWriter(total);
  w.bytes(encodeCommitHeader(header));
  w.u32(body.length);
  w.bytes(body);
  return w.finish();
}

/**
 * Parses and validates a sealed commit, checking in order: size cap, length, version, fields, framing.
 * Throws `ProtocolError` with reason `oversized`, `truncated`, `unknown-version`, `bad-field` or
 * `trailing-bytes`.
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
    throw new ProtocolError("unknown-version", `Commit format version ${version} is not supported.`);
  }
  const space = r.bytes(ID_BYTES, "commit space");
  const device = r.bytes(ID_BYTES, "commit device");
  const seq = r.seq("commit seq");
  const epoch = r.u32("commit epoch");
  const prevHash = r.bytes(HASH_BYTES, "commit prevHash");
  if (seq === 1 && prevHash.some((b) => b !== 0)) {
    throw new ProtocolError("bad-field", "The first commit of a device must have a zero prevHash.");
  }
  const bodyLength = r.u32("commit body length");
  if (bodyLength < MIN_COMMIT_BODY_BYTES) {
    throw new ProtocolError("bad-field", `A commit body must be at least ${MIN_COMMIT_BODY_BYTES} bytes.`);
  }
  if (r.remaining < bodyLength) throw new ProtocolError("truncated", "Commit ends inside its body.");
  if (r.remaining > bodyLength) {
    throw new ProtocolError(
      "trailing-bytes",
      `${r.remaining - bodyLength} unexpected bytes after the commit body.`,
    );
  }
  return {
    header: { version, space, device, seq, epoch, prevHash },
    headerBytes: bytes.subarray(0, COMMIT_HEADER_BYTES),
    body: bytes.subarray(SEALED_COMMIT_OVERHEAD),
  };
}
