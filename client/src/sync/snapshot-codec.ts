import { ValidationError } from "../errors.ts";
import { ByteReader } from "../protocol/byte-reader.ts";
import { ByteWriter } from "../protocol/byte-writer.ts";
import { fromHex, toHex } from "../protocol/hex.ts";
import type { Commit } from "../replica/commit.ts";
import type { Row } from "../replica/materialize.ts";
import type { DeviceId, SpaceId } from "../types.ts";
import { MAX_CONTENT_DEPTH } from "../protocol/limits.ts";
import { jsonNestsDeeper } from "../replica/content-check.ts";
import { decodeCommitPlaintext, encodeCommitPlaintext } from "./commit-codec.ts";

/** A record whose Automerge document exists (edited, merged or deleted), with its row if it has one. */
export interface SnapshotDoc {
  id: string;
  collection: string;
  deleted: boolean;
  bin: Uint8Array;
  heads: string[];
  /** The materialized row (absent for deleted records, or values JSON cannot carry). */
  row?: Row;
}

/**
 * What a snapshot holds: a space's whole commit log up to `vector` (so the device it bootstraps is a
 * full node that can serve and re-upload every commit, with the full history), plus the compacted state
 * of every record that has an Automerge document and its row, so nothing has to be replayed or parsed.
 * Records still only their creation are rebuilt from their insert commit.
 */
export interface SnapshotContent {
  space: SpaceId;
  vector: Record<string, number>;
  commits: Commit[];
  docs: SnapshotDoc[];
}

const VERSION = 1;
const enc = new TextEncoder();
const dec = new TextDecoder("utf-8", { fatal: true });

/** Encodes a snapshot's plaintext (sealed by the caller). Layout in PROTOCOL.md, "Snapshots". */
export function encodeSnapshot(s: SnapshotContent): Uint8Array {
  const w = new ByteWriter(1 << 16);
  w.u8(VERSION);
  w.u32(s.commits.length);
  for (const c of s.commits) {
    w.bytes(fromHex(c.device, 16));
    w.u64(c.seq);
    const plain = encodeCommitPlaintext(c);
    w.u32(plain.length);
    w.bytes(plain);
  }
  w.u32(s.docs.length);
  for (const d of s.docs) {
    w.bytes(fromHex(d.id.replaceAll("-", ""), 16));
    w.u8(d.deleted ? 1 : 0);
    const coll = enc.encode(d.collection);
    w.u16(coll.length);
    w.bytes(coll);
    w.u32(d.bin.length);
    w.bytes(d.bin);
    w.u16(d.heads.length);
    for (const h of d.heads) w.bytes(fromHex(h, 32));
    const row = d.row ? enc.encode(JSON.stringify(d.row)) : new Uint8Array(0);
    w.u32(row.length);
    w.bytes(row);
  }
  return w.finish();
}

/** Decodes a snapshot's plaintext; throws `ProtocolError`/`ValidationError` on anything malformed. */
export function decodeSnapshot(bytes: Uint8Array, space: SpaceId): SnapshotContent {
  const r = new ByteReader(bytes);
  if (r.u8("snapshot version") !== VERSION) throw new ValidationError("Unknown snapshot version.");
  const commitCount = r.u32("commit count");
  if (commitCount > bytes.length)
    throw new ValidationError("Snapshot commit count larger than the snapshot.");
  const commits: Commit[] = [];
  const vector: Record<string, number> = {};
  for (let i = 0; i < commitCount; i++) {
    const device = toHex(r.bytes(16, "device")) as DeviceId;
    const seq = r.seq("seq");
    const plain = r.bytes(r.u32("commit length"), "commit");
    commits.push(decodeCommitPlaintext(plain, { space, device, seq }, { strict: true }));
    vector[device] = Math.max(vector[device] ?? 0, seq);
  }
  const docCount = r.u32("doc count");
  if (docCount > bytes.length) throw new ValidationError("Snapshot record count larger than the snapshot.");
  const docs: SnapshotDoc[] = [];
  for (let i = 0; i < docCount; i++) {
    const h = toHex(r.bytes(16, "record id"));
    const id = `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
    const deleted = r.u8("deleted") === 1;
    const collection = dec.decode(r.bytes(r.u16("collection length"), "collection"));
    const bin = r.bytes(r.u32("document length"), "document");
    const headCount = r.u16("head count");
    const heads: string[] = [];
    for (let k = 0; k < headCount; k++) heads.push(toHex(r.bytes(32, "head")));
    const rowBytes = r.bytes(r.u32("row length"), "row");
    let row: Row | undefined;
    if (rowBytes.length > 0) {
      // Refused before parsing: a row nested deeper than any record may be could not even be stored.
      if (jsonNestsDeeper(rowBytes, MAX_CONTENT_DEPTH))
        throw new ValidationError(`A snapshot row nests deeper than ${MAX_CONTENT_DEPTH} levels.`);
      try {
        row = JSON.parse(dec.decode(rowBytes)) as Row;
      } catch {
        throw new ValidationError("A snapshot row is not valid JSON.");
      }
    }
    docs.push({ id, collection, deleted, bin, heads, ...(row ? { row } : {}) });
  }
  r.end("snapshot");
  return { space, vector, commits, docs };
}
