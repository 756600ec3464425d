import * as A from "@automerge/automerge";
import { sha256 } from "../crypto/sha256.ts";
import { ShoalError, ValidationError } from "../errors.ts";
import { countedCompactions } from "../members/counted-in-own-past.ts";
import { ByteReader } from "../protocol/byte-reader.ts";
import { ByteWriter } from "../protocol/byte-writer.ts";
import { fromHex, toHex } from "../protocol/hex.ts";
import { buildFromCreation } from "../replica/creation.ts";
import { erasedAmong } from "../replica/erased.ts";
import type { Replica } from "../replica/replica.ts";
import type { DocRow, MemberRow, SpaceRow, VectorRow } from "../replica/stored-rows.ts";
import type { DeviceId, SpaceId } from "../types.ts";
import { keySetOf } from "../spaces/member-keys.ts";
import { creatorKeyOf, opsOf } from "../spaces/membership-log.ts";
import { readDocs, writeDocs, type SnapshotContent, type SnapshotDoc } from "./snapshot-codec.ts";
import { importCompacted } from "./import-compacted.ts";
import { readSnapshot } from "./snapshot-io.ts";
import { openSnapshot, sealSnapshot } from "./snapshot-seal.ts";

/** Version byte of a compacted snapshot's plaintext (PROTOCOL.md 6, "Compacted snapshots"). */
export const COMPACTED_SNAPSHOT_FORMAT = 3;

/** A compacted snapshot as it travels (inside its seal): the records only, no commit. */
export interface CompactedSnapshot {
  publisher: DeviceId;
  vector: Record<string, number>;
  docs: SnapshotDoc[];
}

/** A compacted snapshot sealed for the relay: its vector, its sealed bytes and their SHA-256 (hex). */
export interface SealedCompactedSnapshot {
  vector: Record<string, number>;
  sealed: Uint8Array;
  hash: string;
}

function snapshotError(message: string): ShoalError {
  return new ShoalError("SnapshotError", message);
}

/** Encodes a compacted snapshot's plaintext: format 3, publisher, vector, then the records. */
export function encodeCompactedSnapshot(s: CompactedSnapshot): Uint8Array {
  const w = new ByteWriter(1 << 16);
  w.u8(COMPACTED_SNAPSHOT_FORMAT);
  w.bytes(fromHex(s.publisher, 16));
  const devices = Object.keys(s.vector).sort();
  w.u32(devices.length);
  for (const d of devices) {
    w.bytes(fromHex(d, 16));
    w.u64(s.vector[d]!);
  }
  writeDocs(w, s.docs);
  return w.finish();
}

/** Decodes a compacted snapshot's plaintext; `SnapshotError` for another format, else codec errors. */
export function decodeCompactedSnapshot(bytes: Uint8Array): CompactedSnapshot {
  const r = new ByteReader(bytes);
  const version = r.u8("snapshot version");
  if (version !== COMPACTED_SNAPSHOT_FORMAT)
    throw snapshotError(`A space with members has a snapshot of format ${version}, not a compacted one (3).`);
  const publisher = toHex(r.bytes(16, "publisher")) as DeviceId;
  const count = r.u32("device count");
  if (count * 24 > bytes.length) throw new ValidationError("Snapshot device count larger than the snapshot.");
  const vector: Record<string, number> = {};
  for (let i = 0; i < count; i++) {
    const device = toHex(r.bytes(16, "device"));
    vector[device] = r.seq("seq");
  }
  const docs = readDocs(r, bytes.length);
  r.end("snapshot");
  return { publisher, vector, docs };
}

/**
 * Builds and seals this device's compacted snapshot of a space with members (what `db.compact`
 * publishes): every record it holds, as its Automerge document (one that still holds only its creation
 * is built from it, the same change every replica builds), and the vector they reflect; no commit. An
 * erased record is in no snapshot: its document is gone here, and its id is checked against `_erased`
 * once more. Sealed under the space's current key epoch (a removed device does not hold it), with the
 * vector in the AAD like every snapshot. Null when the space holds nothing yet.
 */
export async function buildCompactedSnapshot(
  replica: Replica,
  space: SpaceId,
): Promise<SealedCompactedSnapshot | null> {
  const content = await readSnapshot(replica, space);
  if (Object.keys(content.vector).length === 0) return null;
  const { dexie } = replica;
  const creationOnly = (
    await dexie.table<DocRow, string>("_docs").where("space").equals(space).toArray()
  ).filter((d) => d.bin.length === 0 && d.create);
  const docs: SnapshotDoc[] = [...content.docs];
  for (const d of creationOnly) {
    const doc = buildFromCreation(d.id, d.create!, replica.actor);
    docs.push({
      id: d.id,
      collection: d.collection,
      deleted: false,
      bin: A.save(doc),
      heads: A.getHeads(doc),
    });
  }
  const erased = await erasedAmong(
    dexie,
    docs.map((d) => d.id),
  );
  const kept = docs.filter((d) => !erased.has(d.id));
  const row = await dexie.table<SpaceRow>("_spaces").get(space);
  if (!row) return null;
  const key = keySetOf(row).get(row.epoch ?? 0) ?? row.key;
  const plaintext = encodeCompactedSnapshot({
    publisher: replica.device,
    vector: content.vector,
    docs: kept,
  });
  const sealed = await sealSnapshot(key, space, content.vector, plaintext);
  return { vector: content.vector, sealed, hash: toHex(await sha256(sealed)) };
}

/**
 * Opens a compacted snapshot downloaded for a space with members, and checks it is the one a counted
 * `compact` operation of the log this device holds names (its `snapshot` hash, and a vector the
 * snapshot covers): an admin signed for exactly these bytes, so no other key holder can pass off a
 * snapshot of its own (it carries no commit to check the records against). Tries every key epoch held.
 * Throws `SnapshotError` when it is not attested or does not open.
 */
export async function openCompactedSnapshot(
  replica: Replica,
  space: SpaceId,
  vector: Record<string, number>,
  sealed: Uint8Array,
): Promise<{ content: SnapshotContent; publisher: DeviceId }> {
  const { dexie } = replica;
  const row = await dexie.table<SpaceRow>("_spaces").get(space);
  const creator = creatorKeyOf(row);
  if (!row || !creator) throw snapshotError(`Space ${space} has no membership log here.`);
  const rows = await dexie.table<MemberRow>("_members").where("space").equals(space).toArray();
  const ops = opsOf(rows);
  const hash = toHex(await sha256(sealed));
  const attested = countedCompactions(ops, creator).some((id) => {
    const a = ops.get(id)!.action;
    return (
      a.kind === "compact" &&
      a.snapshot === hash &&
      Object.entries(a.vector).every(([d, seq]) => (vector[d] ?? 0) >= seq)
    );
  });
  if (!attested)
    throw snapshotError(
      `The relay's snapshot of space ${space} is named by no compact operation of an admin in the log held here: not used.`,
    );
  let plaintext: Uint8Array | undefined;
  for (const key of [...keySetOf(row).values()].reverse()) {
    try {
      plaintext = await openSnapshot(key, space, vector, sealed);
      break;
    } catch {
      // Another epoch's key.
    }
  }
  if (!plaintext) throw snapshotError(`The snapshot of space ${space} opens with no key held here.`);
  const wire = decodeCompactedSnapshot(plaintext);
  const same =
    Object.keys(wire.vector).length === Object.keys(vector).length &&
    Object.entries(vector).every(([d, seq]) => wire.vector[d] === seq);
  if (!same) throw snapshotError("The snapshot's vector is not the one it was stored with.");
  return { content: { space, vector, commits: [], docs: wire.docs }, publisher: wire.publisher };
}

/** Records the compacted snapshot this device published and the relay stored (for `db.compact`). */
export async function notePublished(
  replica: Replica,
  space: SpaceId,
  published: { vector: Record<string, number>; snapshot: string },
): Promise<void> {
  const t = replica.dexie.table<SpaceRow>("_spaces");
  await replica.dexie.transaction("rw", t, async () => {
    const row = await t.get(space);
    if (row) await t.put({ ...row, compaction: { ...row.compaction, published } });
  });
}

/**
 * Whether this device may bootstrap `space` from a compacted snapshot: it holds no record of it and no
 * commit but its own (a new member holds its redemption only).
 */
export async function mayBootstrapCompacted(replica: Replica, space: SpaceId): Promise<boolean> {
  const { dexie } = replica;
  if ((await dexie.table<DocRow, string>("_docs").where("space").equals(space).count()) > 0) return false;
  const rows = await dexie.table<VectorRow>("_vectors").where("space").equals(space).toArray();
  return rows.every((r) => r.device === replica.device);
}

/** What a sync session does with compacted snapshots, for one replica (`compactionHooks`). */
export interface SessionCompaction {
  /** Builds and seals the compacted snapshot to publish (`buildCompactedSnapshot`). */
  build(space: SpaceId): Promise<SealedCompactedSnapshot | null>;
  /** Opens a downloaded snapshot as a compacted one, or undefined when the space has no members here. */
  open(
    space: SpaceId,
    vector: Record<string, number>,
    sealed: Uint8Array,
  ): Promise<{ content: SnapshotContent; publisher: DeviceId } | undefined>;
  /** Imports it (`importCompacted`). */
  import(content: SnapshotContent): Promise<boolean>;
  /** The relay stored the one this device published (`notePublished`). */
  published(space: SpaceId, published: { vector: Record<string, number>; snapshot: string }): Promise<void>;
  /** Whether to ask the relay for its snapshot before pulling: a space with members that holds nothing but this device's commits. */
  mayBootstrap(space: SpaceId): Promise<boolean>;
}

/**
 * The compaction side of a session for `replica` (PROTOCOL.md 12).
 *
 * @example
 * new SyncEngine(dexie, { ...replicaOps, compaction: compactionHooks(replica) }, transports, status);
 */
export function compactionHooks(replica: Replica): SessionCompaction {
  const hasLog = async (space: SpaceId) =>
    (await replica.dexie.table("_members").where("space").equals(space).count()) > 0;
  return {
    build: (space) => buildCompactedSnapshot(replica, space),
    open: async (space, vector, sealed) =>
      (await hasLog(space)) ? openCompactedSnapshot(replica, space, vector, sealed) : undefined,
    import: (content) => importCompacted(replica, content),
    published: (space, published) => notePublished(replica, space, published),
    mayBootstrap: async (space) => (await hasLog(space)) && (await mayBootstrapCompacted(replica, space)),
  };
}
