import { ValidationError } from "../errors.ts";
import { ByteReader } from "../protocol/byte-reader.ts";
import { ByteWriter } from "../protocol/byte-writer.ts";
import { MAX_CONTENT_DEPTH } from "../protocol/limits.ts";
import { jsonNestsDeeper } from "../replica/content-check.ts";
import { CommitRefusal } from "../replica/validate-commit.ts";
import { fromHex, toHex } from "../protocol/hex.ts";
import type { Commit, RecordChange } from "../replica/commit.ts";
import { commitId } from "../replica/commit.ts";
import type { Creation } from "../replica/creation.ts";
import type { DeviceId, RecordId, SpaceId } from "../types.ts";

/** Version byte of the plaintext inside a sealed commit. */
export const COMMIT_PLAINTEXT_VERSION = 1;
const OPS = ["insert", "update", "delete"] as const;
const dec = new TextDecoder("utf-8", { fatal: true });

/**
 * Encodes what a sealed commit hides: time, and per record its id, collection, operation, changed paths
 * and Automerge changes. Space, device and sequence are not here: they are the clear routing header.
 * The encoding is canonical (one byte string per commit), so a commit re-sealed anywhere gives the
 * same bytes. Layout (big-endian): u8 version, u64 at (ms), u32 record count, then per record:
 * 16-byte id, u8 op, u16 + collection UTF-8, u16 path count, (u16 + UTF-8) per path, u32 change count,
 * (u32 + bytes) per change, u32 + creation (JSON `[fields, textPaths, counterPaths]`, or length 0).
 *
 * @example
 * const plain = encodeCommitPlaintext(commit);
 * const again = decodeCommitPlaintext(plain, { space, device, seq });
 */
export function encodeCommitPlaintext(c: Commit): Uint8Array {
  const w = new ByteWriter(256);
  w.u8(COMMIT_PLAINTEXT_VERSION);
  w.u64(Math.max(0, Math.floor(c.at)));
  w.u32(c.changes.length);
  for (const rc of c.changes) {
    w.bytes(fromHex(rc.record.replaceAll("-", ""), 16));
    w.u8(OPS.indexOf(rc.op));
    str(w, rc.collection);
    w.u16(rc.paths.length);
    for (const p of rc.paths) str(w, p);
    w.u32(rc.changes.length);
    for (const ch of rc.changes) {
      w.u32(ch.length);
      w.bytes(ch);
    }
    // The creation of a lazy insert, as canonical JSON (keys already sorted), or length 0.
    if (rc.create) w.utf8(JSON.stringify([rc.create.json, rc.create.text, rc.create.counters]), 4);
    else w.u32(0);
  }
  return w.finish();
}

function str(w: ByteWriter, s: string): void {
  if (w.utf8(s, 2) > 0xffff) throw new ValidationError("A collection name or path is too long to sync.");
}

/**
 * Decodes a commit's plaintext, given the routing fields from its (authenticated) header; the result
 * still goes through `validateCommit` when applied. By default a plaintext that cannot be read gives a
 * commit with no changes and a `defect` saying why: the commit is authentic (its author holds the space
 * key), so the receiver quarantines it in its sequence slot instead of stalling on it. With `strict`
 * (a snapshot, refused as a whole), it throws `ProtocolError` on truncation or trailing bytes and
 * `ValidationError` on values out of range. A creation nested deeper than the content limits is
 * refused before `JSON.parse` sees it.
 */
export function decodeCommitPlaintext(
  bytes: Uint8Array,
  routing: { space: SpaceId; device: DeviceId; seq: number },
  options: { strict?: boolean } = {},
): Commit {
  try {
    return decodeStrict(bytes, routing);
  } catch (e) {
    if (options.strict) throw e;
    const defect = {
      reason: e instanceof CommitRefusal ? ("limits" as const) : ("malformed" as const),
      message: e instanceof Error ? e.message : String(e),
    };
    return {
      id: commitId(routing.space, routing.device, routing.seq),
      ...routing,
      at: 0,
      changes: [],
      defect,
    };
  }
}

function decodeStrict(bytes: Uint8Array, routing: { space: SpaceId; device: DeviceId; seq: number }): Commit {
  const r = new ByteReader(bytes);
  const version = r.u8("plaintext version");
  if (version !== COMMIT_PLAINTEXT_VERSION)
    throw new ValidationError(`Unknown commit plaintext version ${version}.`);
  const hi = r.u32("at");
  const lo = r.u32("at");
  const at = hi * 2 ** 32 + lo;
  const count = r.u32("record count");
  if (count > bytes.length) throw new ValidationError("Record count larger than the commit.");
  const changes: RecordChange[] = [];
  for (let i = 0; i < count; i++) {
    const h = toHex(r.bytes(16, "record id"));
    const record =
      `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}` as RecordId;
    const op = OPS[r.u8("op")];
    if (!op) throw new ValidationError("Unknown record operation.");
    const collection = readStr(r, "collection");
    const pathCount = r.u16("path count");
    const paths: string[] = [];
    for (let p = 0; p < pathCount; p++) paths.push(readStr(r, "path"));
    const changeCount = r.u32("change count");
    if (changeCount > bytes.length) throw new ValidationError("Change count larger than the commit.");
    const list: Uint8Array[] = [];
    for (let k = 0; k < changeCount; k++) list.push(r.bytes(r.u32("change length"), "change"));
    const createBytes = r.bytes(r.u32("creation length"), "creation");
    let create: Creation | undefined;
    if (createBytes.length > 0) {
      // The creation is `[fields, text, counters]`: the record's root is at depth 2 of this JSON.
      if (jsonNestsDeeper(createBytes, MAX_CONTENT_DEPTH + 1))
        throw new CommitRefusal("limits", `a record creation nests deeper than ${MAX_CONTENT_DEPTH} levels`);
      let parsed: unknown;
      try {
        parsed = JSON.parse(dec.decode(createBytes));
      } catch {
        throw new ValidationError("A record creation is not valid JSON.");
      }
      if (!Array.isArray(parsed) || parsed.length !== 3)
        throw new ValidationError("A record creation is malformed.");
      create = { json: parsed[0], text: parsed[1], counters: parsed[2] };
    }
    changes.push(
      create
        ? { record, collection, op, paths, changes: list, create }
        : { record, collection, op, paths, changes: list },
    );
  }
  r.end("commit plaintext");
  return { id: commitId(routing.space, routing.device, routing.seq), ...routing, at, changes };
}

function readStr(r: ByteReader, field: string): string {
  const b = r.bytes(r.u16(field), field);
  try {
    return dec.decode(b);
  } catch {
    throw new ValidationError(`${field} is not UTF-8.`);
  }
}
