import { NONCE_BYTES, TAG_BYTES } from "../crypto/seal.ts";
import { paddedSize } from "../crypto/padding.ts";
import { CommitTooLarge, ValidationError } from "../errors.ts";
import { MAX_COMMIT_BYTES } from "../protocol/limits.ts";
import { SEALED_COMMIT_FIXED_BYTES } from "../protocol/sealed-commit.ts";
import type { RecordChange } from "./commit.ts";

/** The parts of a record change that its sealed size depends on (id and op have fixed sizes). */
export type SizedChange = Pick<RecordChange, "collection" | "paths" | "changes" | "create">;

/** Plaintext bytes before the records: version (u8), time (u64), record count (u32). */
const PLAIN_HEAD = 1 + 8 + 4;
/** Fixed plaintext bytes per record: id (16), op (u8), path count (u16), change count (u32), creation
 * length (u32); names are counted with their u16 length by `nameBytes`. */
const PLAIN_PER_RECORD = 16 + 1 + 2 + 4 + 4;

/**
 * Bytes of `s` in UTF-8, as `TextEncoder` writes it (a lone surrogate becomes U+FFFD, 3 bytes), counted
 * without encoding: a long note is measured in one pass with no copy.
 *
 * @example
 * utf8Length("é"); // 2
 * utf8Length("漢"); // 3
 */
export function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        n += 4;
        i++;
      } else n += 3;
    } else n += 3;
  }
  return n;
}

function nameBytes(s: string): number {
  const n = utf8Length(s);
  if (n > 0xffff) {
    throw new ValidationError(
      `A collection or field name of ${n} bytes is too long to sync (at most 65,535).`,
    );
  }
  return 2 + n;
}

/**
 * The exact size of the plaintext a commit with these record changes encodes to (`encodeCommitPlaintext`
 * in `sealing/commit-codec.ts`, PROTOCOL.md section 3.2). Computed arithmetically, so checking a commit's
 * size costs no encryption and no copy of its changes.
 *
 * @throws {ValidationError} on a collection or field name over 65,535 UTF-8 bytes (never encodable).
 */
export function commitPlaintextBytes(changes: readonly SizedChange[]): number {
  let n = PLAIN_HEAD;
  for (const rc of changes) {
    n += PLAIN_PER_RECORD + nameBytes(rc.collection);
    for (const p of rc.paths) n += nameBytes(p);
    for (const ch of rc.changes) n += 4 + ch.length;
    if (rc.create) n += utf8Length(JSON.stringify([rc.create.json, rc.create.text, rc.create.counters]));
  }
  return n;
}

/**
 * The exact size of the sealed commit these record changes make (PROTOCOL.md section 3): routing header
 * and body length (81), nonce (12), the plaintext's padding bucket (length prefix included), tag (16).
 *
 * @example
 * if (sealedCommitBytes(changes) > MAX_COMMIT_BYTES) split();
 */
export function sealedCommitBytes(changes: readonly SizedChange[]): number {
  return sealedBytesOfPlaintext(commitPlaintextBytes(changes));
}

/**
 * The exact size of the sealed commit around a plaintext of `length` bytes.
 *
 * @example
 * sealedBytesOfPlaintext(0); // 81 + 12 + 256 + 16 = 365
 */
export function sealedBytesOfPlaintext(length: number): number {
  return SEALED_COMMIT_FIXED_BYTES + NONCE_BYTES + paddedSize(length) + TAG_BYTES;
}

/**
 * Throws `CommitTooLarge` when a commit of `space` with these changes could never be sealed into one
 * sealed commit (at most `MAX_COMMIT_BYTES`): for a transaction, or for the stored commit `commitId`.
 */
export function assertSealable(space: string, changes: readonly SizedChange[], commitId?: string): void {
  const bytes = sealedCommitBytes(changes);
  if (bytes > MAX_COMMIT_BYTES) throw commitTooLarge(space, bytes, commitId);
}

/**
 * The `CommitTooLarge` for a commit of `space` that would seal to `bytes`: for a transaction (nothing
 * saved, split it) or, given `commitId`, for a commit stored by an older version (the way out).
 */
export function commitTooLarge(space: string, bytes: number, commitId?: string): CommitTooLarge {
  const size = `${bytes.toLocaleString("en")} bytes sealed, over the ${MAX_COMMIT_BYTES.toLocaleString("en")} one commit may hold`;
  return new CommitTooLarge(
    commitId
      ? `Commit ${commitId} is too large to sync (${size}); it was made by an older version and blocks this device's uploads in its space: call db.rollBackUnsyncable() to remove it and get its records' values back.`
      : `This transaction is too large to sync (${size} in space ${space}). Nothing was saved: split it into smaller transactions (fewer records each, or a long text saved in parts).`,
    { space, bytes, limit: MAX_COMMIT_BYTES },
  );
}
