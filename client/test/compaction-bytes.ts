// Relay bytes of one space before and after `db.compact` (issue 16 item 3): a real relay process with
// the SQLite store, one admin device (fake-indexeddb under Node). Shared by the integration test
// (`compaction-bytes.test.ts`, a small space) and `npm run compaction-bytes` (10,000 records edited 10
// times each, scripts/compaction-bytes.mjs).
import Sqlite from "better-sqlite3";
import { statSync } from "node:fs";
import {
  closeAllDevices,
  openDevice,
  patientCollections,
  RelayHarness,
  relayAcknowledged,
  type Patient,
} from "./relay-harness.ts";

/** What the relay holds, in bytes. */
export interface RelayBytes {
  /** `shoal_store_bytes` from `/metrics`: the store's count of commit and snapshot bytes. */
  store: number;
  /** Commits the relay holds bytes of (data and membership). */
  commits: number;
  /** The stored snapshot's size (0 when none). */
  snapshot: number;
  /** Sizes of the data directory's files (SQLite file, WAL, shared memory). */
  files: Record<string, number>;
}

/** The figures of one run. */
export interface CompactionFigures {
  records: number;
  edits: number;
  /** Records per commit (inserts and each round of edits are written in transactions of this many). */
  batch: number;
  /** Commits written. */
  written: number;
  before: RelayBytes;
  after: RelayBytes;
  /** The SQLite file's size after an offline `VACUUM` of the compacted store (what the file can shrink to). */
  vacuumed: number;
  /** Milliseconds: writing and uploading, then `db.compact` until the relay acknowledged it. */
  ms: { write: number; compact: number };
}

async function relayBytes(relay: RelayHarness, space: string): Promise<RelayBytes> {
  const store = Number(/^shoal_store_bytes (\d+)/m.exec(await relay.metrics())?.[1] ?? NaN);
  const db = new Sqlite(relay.sqliteFile, { readonly: true, fileMustExist: true });
  try {
    const commits = db
      .prepare("SELECT count(*) FROM commits WHERE space = ? AND length(bytes) > 0")
      .pluck()
      .get(space) as number;
    const snapshot =
      (db.prepare("SELECT size FROM snapshots WHERE space = ?").pluck().get(space) as number) ?? 0;
    const files: Record<string, number> = {};
    for (const f of relay.dataFiles()) files[f.name.slice(relay.dataDir.length + 1)] = f.bytes.length;
    return { store, commits, snapshot, files };
  } finally {
    db.close();
  }
}

/**
 * Writes `records` records, then edits each `edits` times (in transactions of `batch` records), lets
 * the relay take it all, measures its bytes, compacts, measures again, then vacuums the stopped
 * relay's file once to show what the file itself can shrink to.
 */
export async function measureCompaction(opts: {
  records: number;
  edits: number;
  batch: number;
  log?: (line: string) => void;
}): Promise<CompactionFigures> {
  const { records, edits, batch } = opts;
  const log = opts.log ?? (() => {});
  const relay = await RelayHarness.start();
  try {
    const a = await openDevice<{ patients: Patient }>("bytes", patientCollections);
    a.online(relay.url);
    const space = await a.db.createSpace({ name: "Clinic" });
    // A space with members (its log's `create` comes with the first invitation).
    await a.db.invite(space, { role: "writer", me: "Dr. Admin" });
    const t0 = performance.now();
    let written = 0;
    const ids: string[] = [];
    for (let i = 0; i < records; i += batch) {
      const n = Math.min(batch, records - i);
      ids.push(
        ...(await a.db.transact(async (tx) => {
          const out: string[] = [];
          for (let k = 0; k < n; k++)
            out.push(
              await tx.patients.insert(
                { name: `Patient ${i + k}`, ward: `W${(i + k) % 12}`, notes: "" },
                { space },
              ),
            );
          return out;
        })),
      );
      written++;
    }
    log(`inserted ${records} records in ${written} commits`);
    for (let e = 0; e < edits; e++) {
      for (let i = 0; i < ids.length; i += batch) {
        const slice = ids.slice(i, i + batch);
        await a.db.transact(async (tx) => {
          for (const id of slice) await tx.patients.update(id, (p) => void (p.notes += `edit ${e + 1}; `));
        });
        written++;
      }
      log(`edit round ${e + 1} of ${edits}`);
    }
    await relayAcknowledged(a.db, space.id, 600_000);
    const write = performance.now() - t0;
    const before = await relayBytes(relay, space.id);
    log(`relay holds ${before.store} bytes; compacting`);
    const t1 = performance.now();
    await a.db.compact(space);
    await relayAcknowledged(a.db, space.id, 600_000);
    const compact = performance.now() - t1;
    const after = await relayBytes(relay, space.id);
    await closeAllDevices();
    await relay.stop();
    const db = new Sqlite(relay.sqliteFile);
    db.exec("VACUUM");
    db.pragma("wal_checkpoint(TRUNCATE)");
    db.close();
    const vacuumed = statSync(relay.sqliteFile).size;
    return { records, edits, batch, written, before, after, vacuumed, ms: { write, compact } };
  } finally {
    await closeAllDevices();
    await relay.dispose();
  }
}
