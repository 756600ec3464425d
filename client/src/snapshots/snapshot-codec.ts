import { ShoalError, ValidationError } from "../errors.ts";
import { ByteReader } from "../protocol/byte-reader.ts";
import { ByteWriter } from "../protocol/byte-writer.ts";
import { fromHex, toHex } from "../protocol/hex.ts";
import type { Commit } from "../replica/commit.ts";
import type { Row } from "../replica/materialize.ts";
import type { DeviceId, SpaceId } from "../types.ts";
import { MAX_CONTENT_DEPTH } from "../protocol/limits.ts";
import { jsonNestsDeeper } from "../replica/content-check.ts";

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
 * A snapshot as read from or imported into a replica: a space's whole commit log up to `vector` (so the
 * device it bootstraps is a full node that can serve and re-upload every commit, with the full
 * history), plus the compacted state of every record that has an Automerge document and its row, so
 * nothing has to be replayed or parsed. Records still only their creation are rebuilt from their insert
 * commit.
 */
export interface SnapshotContent {
  space: SpaceId;
  vector: Record<string, number>;
  commits: Commit[];
  docs: SnapshotDoc[];
}

/** The last commit of a device a snapshot covers: its seq and the SHA-256 of its sealed bytes. */
export interface SnapshotHead {
  seq: number;
  hash: Uint8Array;
}

/**
 * A snapshot as it travels (inside its seal): the commit log as the sealed commits themselves, so the
 * receiver opens and chain-checks each one and the log is tied to the sealed commits the relay holds;
 * per device the head it covers; the device that published it (a claim, for reports); the records.
 */
export interface SnapshotWire {
  publisher: DeviceId;
  heads: Record<string, SnapshotHead>;
  /** Every sealed commit up to the heads, in the publisher's causal order. */
  sealed: Uint8Array[];
  docs: SnapshotDoc[];
}

/** Version byte of a snapshot's plaintext. 1 (commits as plaintext, no heads) is refused. */
export const SNAPSHOT_FORMAT_VERSION = 2;
const enc = new TextEncoder();
const dec = new TextDecoder("utf-8", { fatal: true });

/** Encodes a snapshot's plaintext (sealed by the caller). Layout in PROTOCOL.md section 6. */
export function encodeSnapshot(s: SnapshotWire): Uint8Array {
  const w = new ByteWriter(1 << 16);
  w.u8(SNAPSHOT_FORMAT_VERSION);
  w.bytes(fromHex(s.publisher, 16));
  const devices = Object.keys(s.heads).sort();
  w.u32(devices.length);
  for (const d of devices) {
    w.bytes(fromHex(d, 16));
    w.u64(s.heads[d]!.seq);
    w.bytes(s.heads[d]!.hash);
  }
  w.u32(s.sealed.length);
  for (const c of s.sealed) {
    w.u32(c.length);
    w.bytes(c);
  }
  writeDocs(w, s.docs);
  return w.finish();
}

/**
 * Decodes a snapshot's plaintext; throws `SnapshotError` for another format version (1 is no longer
 * read: its commit log was not tied to the sealed commits), `ProtocolError`/`ValidationError` on
 * anything malformed. The sealed commits are not opened here (see `SnapshotExchange`).
 */
export function decodeSnapshot(bytes: Uint8Array, _space: SpaceId): SnapshotWire {
  const r = new ByteReader(bytes);
  const version = r.u8("snapshot version");
  if (version !== SNAPSHOT_FORMAT_VERSION)
    throw new ShoalError(
      "SnapshotError",
      `Snapshot format ${version} is not read by this version of Shoal (it reads format ${SNAPSHOT_FORMAT_VERSION}): pulling every commit instead.`,
    );
  const publisher = toHex(r.bytes(16, "publisher")) as DeviceId;
  const deviceCount = r.u32("device count");
  if (deviceCount * 56 > bytes.length)
    throw new ValidationError("Snapshot device count larger than the snapshot.");
  const deviceHeads: Record<string, SnapshotHead> = {};
  for (let i = 0; i < deviceCount; i++) {
    const device = toHex(r.bytes(16, "device"));
    const seq = r.seq("seq");
    deviceHeads[device] = { seq, hash: r.bytes(32, "head hash") };
  }
  const commitCount = r.u32("commit count");
  if (commitCount * 4 > bytes.length)
    throw new ValidationError("Snapshot commit count larger than the snapshot.");
  const sealed: Uint8Array[] = [];
  for (let i = 0; i < commitCount; i++) sealed.push(r.bytes(r.u32("commit length"), "commit"));
  const docs = readDocs(r, bytes.length);
  r.end("snapshot");
  return { publisher, heads: deviceHeads, sealed, docs };
}

/** Writes a snapshot's records (format 2 and 3 alike; PROTOCOL.md section 6). */
export function writeDocs(w: ByteWriter, docs: readonly SnapshotDoc[]): void {
  w.u32(docs.length);
  for (const d of docs) {
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
}

/** Reads a snapshot's records (format 2 and 3 alike); `total` bounds the count (the snapshot's size). */
export function readDocs(r: ByteReader, total: number): SnapshotDoc[] {
  const docCount = r.u32("doc count");
  if (docCount > total) throw new ValidationError("Snapshot record count larger than the snapshot.");
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
  return docs;
}
