import { ProtocolError } from "../errors.ts";
import { ByteWriter } from "./byte-writer.ts";
import { checkBytes, checkId, checkInt, checkSeq } from "./field-checks.ts";
import { COMMIT_FORMAT_VERSION, HASH_BYTES, PUBLIC_KEY_BYTES } from "./limits.ts";

/**
 * The routing header of a sealed commit: in clear so the relay can route, order and verify it, and
 * bound to the ciphertext as AES-GCM additional data so moving or altering it breaks the tag.
 *
 * @example
 * const header: CommitHeader = { version: 2, space, device, seq: 1, epoch: 0, prevHash: new Uint8Array(32), author };
 */
export interface CommitHeader {
  /** Commit format version, `COMMIT_FORMAT_VERSION`. */
  version: number;
  /** 16-byte space id. */
  space: Uint8Array;
  /** 16-byte id of the authoring device: the first 16 bytes of SHA-256 of `author`. */
  device: Uint8Array;
  /** Per (space, device) sequence number, 1, 2, 3, ... without gaps. */
  seq: number;
  /** Key epoch (u32): which generation of the space key sealed the body. */
  epoch: number;
  /** SHA-256 of this device's previous whole sealed commit in this space; 32 zero bytes when seq is 1. */
  prevHash: Uint8Array;
  /** The authoring device's raw Ed25519 public key (32 bytes), whose signature ends the commit. */
  author: Uint8Array;
}

/** Length of the routing header (the AAD): 1 + 16 + 16 + 8 + 4 + 32 + 32. */
export const COMMIT_HEADER_BYTES = 109;

/**
 * The exact header bytes, which are also the AES-GCM additional data. Validates every field.
 *
 * @example
 * const aad = encodeCommitHeader(header); // 109 bytes
 * await crypto.subtle.encrypt({ name: "AES-GCM", iv, additionalData: aad }, key, plaintext);
 */
export function encodeCommitHeader(h: CommitHeader): Uint8Array {
  if (h.version !== COMMIT_FORMAT_VERSION) {
    throw new ProtocolError(
      "unknown-version",
      `Commit format version ${String(h.version)} is not supported.`,
    );
  }
  const w = new ByteWriter(COMMIT_HEADER_BYTES);
  w.u8(h.version);
  w.bytes(checkId(h.space, "commit space"));
  w.bytes(checkId(h.device, "commit device"));
  const seq = checkSeq(h.seq, "commit seq");
  w.u64(seq);
  w.u32(checkInt(h.epoch, 0, 0xffffffff, "commit epoch"));
  const prevHash = checkBytes(h.prevHash, HASH_BYTES, "commit prevHash");
  if (seq === 1 && prevHash.some((b) => b !== 0)) {
    throw new ProtocolError("bad-field", "The first commit of a device must have a zero prevHash.");
  }
  w.bytes(prevHash);
  w.bytes(checkBytes(h.author, PUBLIC_KEY_BYTES, "commit author"));
  return w.finish();
}
