import Database from "better-sqlite3";
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { selectForRead, type ReadCandidate } from "./select-for-read.ts";
import { replaceRule } from "./replace-rule.ts";
import { sequenceVerdict } from "./sequence-rule.ts";
import { GroupCommit, type GroupOutcome } from "./group-commit.ts";
import { decodeSnapshotVector, encodeSnapshotVector, snapshotRefusal } from "./snapshot-rule.ts";
import { covers, isMembershipCommitBytes } from "./compact-rule.ts";
import type {
  AppendOptions,
  AppendResult,
  CompactResult,
  IncomingCommit,
  ReadOptions,
  ReadResult,
  RelayStore,
  ReplaceResult,
  SnapshotOptions,
  SnapshotVerdict,
  StoredSnapshot,
} from "./store.ts";

const SCHEMA = `
CREATE TABLE IF NOT EXISTS spaces (
  space TEXT PRIMARY KEY,
  token_hash BLOB NOT NULL,
  creator BLOB,
  bytes INTEGER NOT NULL DEFAULT 0,
  commits INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS heads (
  space TEXT NOT NULL,
  device TEXT NOT NULL,
  seq INTEGER NOT NULL,
  hash BLOB NOT NULL,
  PRIMARY KEY (space, device)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS commits (
  id INTEGER PRIMARY KEY,
  space TEXT NOT NULL,
  device TEXT NOT NULL,
  seq INTEGER NOT NULL,
  size INTEGER NOT NULL,
  hash BLOB NOT NULL,
  bytes BLOB NOT NULL,
  UNIQUE (space, device, seq)
);
CREATE TABLE IF NOT EXISTS membership_ops (
  id INTEGER PRIMARY KEY,
  space TEXT NOT NULL,
  op TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS membership_ops_space ON membership_ops (space, id);
CREATE TABLE IF NOT EXISTS snapshots (
  space TEXT PRIMARY KEY,
  vector TEXT NOT NULL,
  size INTEGER NOT NULL,
  bytes BLOB NOT NULL
);
`;

/** One durable write transaction of `SqliteStore`'s group commit, for metrics. */
export interface StoreBatch {
  /** `append` calls that shared the transaction (and its one fsync). */
  appends: number;
  /** Commits newly stored by them (duplicates and refused commits excluded). */
  commits: number;
}

/** Hooks of `SqliteStore`; all optional. */
export interface SqliteStoreOptions {
  /** Called after each group transaction of appends committed (the relay feeds `/metrics` with it). */
  onBatch?: (batch: StoreBatch) => void;
  /**
   * Tests only: runs inside each group transaction after every append of it ran, just before COMMIT.
   * Throwing there fails the transaction the way a full disk or an I/O error would.
   */
  beforeCommit?: () => void;
}

interface AppendJob {
  space: string;
  commits: readonly IncomingCommit[];
  options: AppendOptions;
}

/**
 * The default `RelayStore`: one SQLite file (better-sqlite3) in WAL mode with `synchronous=FULL`, so a
 * transaction that returned has had its WAL frames fsynced and the relay may acknowledge it.
 *
 * Appends use group commit: every `append` called during one turn of the event loop (from any space,
 * any connection) runs in one IMMEDIATE transaction, so one fsync makes all of them durable, and each
 * promise resolves only after that transaction committed. Inside it each call runs in a savepoint,
 * in call order, with exactly the rules of a lone `append` (a later call sees an earlier one's
 * commits; a refusal stops only its own call). A call that throws on its own (an unregistered space)
 * rolls back its savepoint and fails alone; an SQLite error (disk full, I/O) fails the transaction and
 * rejects every call in it, and nothing of it was stored. Other writes (`replace`, `putSnapshot`) stay
 * one transaction each: they are rare.
 *
 * @example
 * const store = new SqliteStore("./relay-data/relay.sqlite", { onBatch: (b) => metrics.storeBatch(b) });
 */
export class SqliteStore implements RelayStore {
  readonly #db: Database.Database;
  readonly #stmt;
  readonly #hooks: SqliteStoreOptions;
  readonly #appends = new GroupCommit<AppendJob, AppendResult>((jobs) => this.#appendGroup(jobs));
  readonly #appendSavepoint: Database.Transaction<(job: AppendJob) => AppendResult>;
  readonly #groupTransaction: Database.Transaction<(jobs: AppendJob[]) => GroupOutcome<AppendResult>[]>;

  constructor(file: string, options: SqliteStoreOptions = {}) {
    this.#hooks = options;
    if (file !== ":memory:") mkdirSync(dirname(file), { recursive: true });
    this.#db = new Database(file);
    this.#db.pragma("journal_mode = WAL");
    // FULL (not NORMAL) also fsyncs the WAL at each commit: an ack must survive power loss, not only a crash.
    this.#db.pragma("synchronous = FULL");
    this.#db.pragma("foreign_keys = ON");
    // Always, not only while compacting: SQLite leaves old copies of rows in the unused space of pages
    // it rebalances (a leaf that became an interior page keeps its old cells), and only with
    // secure_delete on from the start are those zeroed as they arise. Then a compaction's dropped bytes
    // are in no page of the file (PROTOCOL.md 12). A file written by an older relay may still hold such
    // copies: `VACUUM` it once.
    this.#db.pragma("secure_delete = ON");
    this.#db.exec(SCHEMA);
    // Files made before space claims lack the column; their spaces keep no creator (NULL).
    const columns = this.#db.prepare("SELECT name FROM pragma_table_info('spaces')").pluck().all();
    if (!columns.includes("creator")) this.#db.exec("ALTER TABLE spaces ADD COLUMN creator BLOB");
    const db = this.#db;
    this.#appendSavepoint = db.transaction((job: AppendJob) =>
      this.#appendInTransaction(job.space, job.commits, job.options),
    );
    this.#groupTransaction = db.transaction((jobs: AppendJob[]) => this.#groupBody(jobs));
    this.#stmt = {
      register: db.prepare("INSERT OR IGNORE INTO spaces (space, token_hash, creator) VALUES (?, ?, ?)"),
      tokenHash: db.prepare("SELECT token_hash AS h FROM spaces WHERE space = ?").pluck(),
      creator: db.prepare("SELECT creator FROM spaces WHERE space = ?").pluck(),
      vector: db.prepare("SELECT device, seq FROM heads WHERE space = ?"),
      ops: db.prepare("SELECT op FROM membership_ops WHERE space = ? ORDER BY id").pluck(),
      insertOp: db.prepare("INSERT INTO membership_ops (space, op) VALUES (?, ?)"),
      head: db.prepare("SELECT seq, hash FROM heads WHERE space = ? AND device = ?"),
      hashAt: db.prepare("SELECT hash FROM commits WHERE space = ? AND device = ? AND seq = ?").pluck(),
      insert: db.prepare(
        "INSERT INTO commits (space, device, seq, size, hash, bytes) VALUES (?, ?, ?, ?, ?, ?)",
      ),
      bytesAt: db.prepare("SELECT bytes FROM commits WHERE space = ? AND device = ? AND seq = ?").pluck(),
      overwrite: db.prepare(
        "UPDATE commits SET hash = ?, bytes = ? WHERE space = ? AND device = ? AND seq = ?",
      ),
      setHeadHash: db.prepare("UPDATE heads SET hash = ? WHERE space = ? AND device = ? AND seq = ?"),
      setHead: db.prepare("INSERT OR REPLACE INTO heads (space, device, seq, hash) VALUES (?, ?, ?, ?)"),
      usage: db.prepare("SELECT bytes, commits FROM spaces WHERE space = ?"),
      addUsage: db.prepare("UPDATE spaces SET bytes = bytes + ?, commits = commits + ? WHERE space = ?"),
      // Compacted commits (size 0, bytes dropped) are skipped.
      run: db.prepare(
        "SELECT id, size FROM commits WHERE space = ? AND device = ? AND seq > ? AND size > 0 ORDER BY seq LIMIT ?",
      ),
      compactable: db.prepare(
        "SELECT id, size, bytes FROM commits WHERE space = ? AND device = ? AND seq <= ? AND size > 0",
      ),
      dropBytes: db.prepare("UPDATE commits SET size = 0, bytes = x'' WHERE id = ?"),
      dropSnapshot: db.prepare("DELETE FROM snapshots WHERE space = ?"),
      bytesById: db.prepare("SELECT bytes FROM commits WHERE id = ?").pluck(),
      snapshotMeta: db.prepare("SELECT vector, size FROM snapshots WHERE space = ?"),
      snapshot: db.prepare("SELECT vector, bytes FROM snapshots WHERE space = ?"),
      putSnapshot: db.prepare(
        "INSERT OR REPLACE INTO snapshots (space, vector, size, bytes) VALUES (?, ?, ?, ?)",
      ),
      stats: db.prepare(
        "SELECT count(*) AS spaces, coalesce(sum(commits), 0) AS commits, coalesce(sum(bytes), 0) AS bytes FROM spaces",
      ),
    };
  }

  async registerSpace(space: string, tokenHash: Uint8Array, creator?: Uint8Array): Promise<Uint8Array> {
    this.#stmt.register.run(space, tokenHash, creator ?? null);
    return toBytes(this.#stmt.tokenHash.get(space));
  }

  async creator(space: string): Promise<Uint8Array | undefined> {
    const c = this.#stmt.creator.get(space);
    return c === undefined || c === null ? undefined : toBytes(c);
  }

  async tokenHash(space: string): Promise<Uint8Array | undefined> {
    const h = this.#stmt.tokenHash.get(space);
    return h === undefined ? undefined : toBytes(h);
  }

  async membershipOps(space: string): Promise<string[]> {
    return this.#stmt.ops.all(space) as string[];
  }

  async vector(space: string): Promise<Map<string, number>> {
    const rows = this.#stmt.vector.all(space) as { device: string; seq: number }[];
    return new Map(rows.map((r) => [r.device, r.seq]));
  }

  async append(
    space: string,
    commits: readonly IncomingCommit[],
    options: AppendOptions,
  ): Promise<AppendResult> {
    return this.#appends.submit({ space, commits, options });
  }

  /** One group of appends: one transaction, a savepoint per call (see the class comment). */
  #appendGroup(jobs: AppendJob[]): GroupOutcome<AppendResult>[] {
    const outcomes = this.#groupTransaction.immediate(jobs);
    const commits = outcomes.reduce((n, o) => n + (o.ok ? o.value.stored.length : 0), 0);
    this.#hooks.onBatch?.({ appends: jobs.length, commits });
    return outcomes;
  }

  #groupBody(jobs: AppendJob[]): GroupOutcome<AppendResult>[] {
    const outcomes = jobs.map((job): GroupOutcome<AppendResult> => {
      try {
        // Nested in the group's transaction, better-sqlite3 runs this one as a savepoint.
        return { ok: true, value: this.#appendSavepoint(job) };
      } catch (error) {
        // The database itself failed (disk full, I/O): the whole transaction must go, not one savepoint.
        if (error instanceof Database.SqliteError) throw error;
        return { ok: false, error };
      }
    });
    this.#hooks.beforeCommit?.();
    return outcomes;
  }

  #appendInTransaction(
    space: string,
    commits: readonly IncomingCommit[],
    options: AppendOptions,
  ): AppendResult {
    const usage = this.#stmt.usage.get(space) as { bytes: number; commits: number } | undefined;
    if (!usage) throw new Error(`Space ${space} is not registered.`);
    const result: AppendResult = { stored: [], duplicates: 0, heads: new Map() };
    const heads = new Map<string, { seq: number; hash: Uint8Array | undefined }>();
    let addedBytes = 0;
    for (const [index, c] of commits.entries()) {
      let head = heads.get(c.device);
      if (!head) {
        const row = this.#stmt.head.get(space, c.device) as { seq: number; hash: Buffer } | undefined;
        head = { seq: row?.seq ?? 0, hash: row ? toBytes(row.hash) : undefined };
        heads.set(c.device, head);
      }
      const verdict = sequenceVerdict(head, c, (seq) => {
        const h = this.#stmt.hashAt.get(space, c.device, seq) as Buffer | undefined;
        return h === undefined ? undefined : toBytes(h);
      });
      if (verdict === "append" && usage.bytes + addedBytes + c.bytes.length > options.quotaBytes) {
        result.refused = { device: c.device, seq: c.seq, code: "quota", index };
        break;
      }
      if (verdict === "append") {
        this.#stmt.insert.run(space, c.device, c.seq, c.bytes.length, c.hash, c.bytes);
        this.#stmt.setHead.run(space, c.device, c.seq, c.hash);
        if (c.membershipOp !== undefined) this.#stmt.insertOp.run(space, c.membershipOp);
        head.seq = c.seq;
        head.hash = c.hash;
        addedBytes += c.bytes.length;
        result.stored.push(c);
      } else if (verdict === "duplicate") {
        result.duplicates += 1;
      } else {
        result.refused = { device: c.device, seq: c.seq, code: verdict, index };
        break;
      }
      result.heads.set(c.device, head.seq);
    }
    if (result.stored.length > 0) this.#stmt.addUsage.run(addedBytes, result.stored.length, space);
    return result;
  }

  async replace(space: string, commit: IncomingCommit): Promise<ReplaceResult> {
    // IMMEDIATE: the rule and the write see one state; synchronous=FULL makes the commit durable.
    return this.#db
      .transaction((): ReplaceResult => {
        if (!this.#stmt.usage.get(space)) throw new Error(`Space ${space} is not registered.`);
        const row = this.#stmt.head.get(space, commit.device) as { seq: number } | undefined;
        const head = row?.seq ?? 0;
        const stored = this.#stmt.bytesAt.get(space, commit.device, commit.seq) as Buffer | undefined;
        const verdict = replaceRule(head, stored === undefined ? undefined : toBytes(stored), commit);
        if (verdict !== "replace") return { verdict, head };
        this.#stmt.overwrite.run(commit.hash, commit.bytes, space, commit.device, commit.seq);
        this.#stmt.setHeadHash.run(commit.hash, space, commit.device, commit.seq);
        return { verdict: "replaced", head };
      })
      .immediate();
  }

  async read(space: string, since: ReadonlyMap<string, number>, options: ReadOptions): Promise<ReadResult> {
    const runs: ReadCandidate<number>[][] = [];
    for (const [device, head] of await this.vector(space)) {
      const from = since.get(device) ?? 0;
      if (head <= from) continue;
      // One more than maxCount per device, so that `more` is exact when a run is cut short.
      const rows = this.#stmt.run.all(space, device, from, options.maxCount + 1) as {
        id: number;
        size: number;
      }[];
      runs.push(rows.map((r) => ({ order: r.id, size: r.size, ref: r.id })));
    }
    const { picked, bytes, more } = selectForRead(runs, options.maxBytes, options.maxCount);
    const commits = picked.map((c) => toBytes(this.#stmt.bytesById.get(c.ref)));
    return { commits, bytes, more };
  }

  async putSnapshot(
    space: string,
    vector: ReadonlyMap<string, number>,
    bytes: Uint8Array,
    options: SnapshotOptions = {},
  ): Promise<SnapshotVerdict> {
    // IMMEDIATE: the checks and the write see one state; synchronous=FULL makes the commit durable.
    return this.#db
      .transaction((): SnapshotVerdict => {
        const usage = this.#stmt.usage.get(space) as { bytes: number } | undefined;
        if (!usage) throw new Error(`Space ${space} is not registered.`);
        const old = this.#stmt.snapshotMeta.get(space) as { vector: string; size: number } | undefined;
        const refusal = snapshotRefusal(
          vector,
          (device) => (this.#stmt.head.get(space, device) as { seq: number } | undefined)?.seq ?? 0,
          old && decodeSnapshotVector(old.vector),
        );
        if (refusal) return refusal;
        const delta = bytes.length - (old?.size ?? 0);
        if (options.quotaBytes !== undefined && usage.bytes + delta > options.quotaBytes) return "quota";
        this.#stmt.putSnapshot.run(space, encodeSnapshotVector(vector), bytes.length, bytes);
        this.#stmt.addUsage.run(delta, 0, space);
        return "stored";
      })
      .immediate();
  }

  async compact(space: string, vector: ReadonlyMap<string, number>): Promise<CompactResult> {
    // secure_delete (on since the store opened): the space the dropped bytes leave is zeroed, not freed.
    const out = this.#db
      .transaction((): CompactResult => {
        if (!this.#stmt.usage.get(space)) throw new Error(`Space ${space} is not registered.`);
        const result: CompactResult = { commits: 0, bytes: 0, snapshot: false };
        for (const [device, upTo] of vector) {
          const rows = this.#stmt.compactable.all(space, device, upTo) as {
            id: number;
            size: number;
            bytes: Buffer;
          }[];
          for (const r of rows) {
            if (isMembershipCommitBytes(r.bytes)) continue;
            this.#stmt.dropBytes.run(r.id);
            result.commits += 1;
            result.bytes += r.size;
          }
        }
        const snap = this.#stmt.snapshotMeta.get(space) as { vector: string; size: number } | undefined;
        if (snap && !covers(decodeSnapshotVector(snap.vector), vector)) {
          this.#stmt.dropSnapshot.run(space);
          result.bytes += snap.size;
          result.snapshot = true;
        }
        this.#stmt.addUsage.run(-result.bytes, -result.commits, space);
        return result;
      })
      .immediate();
    // The WAL still holds the old pages until a checkpoint: copy them back (zeroed) and truncate it.
    this.#db.pragma("wal_checkpoint(TRUNCATE)");
    return out;
  }

  async getSnapshot(space: string): Promise<StoredSnapshot | undefined> {
    const row = this.#stmt.snapshot.get(space) as { vector: string; bytes: Buffer } | undefined;
    return row && { vector: decodeSnapshotVector(row.vector), bytes: toBytes(row.bytes) };
  }

  async usage(space: string): Promise<{ commits: number; bytes: number }> {
    const row = this.#stmt.usage.get(space) as { bytes: number; commits: number } | undefined;
    return { commits: row?.commits ?? 0, bytes: row?.bytes ?? 0 };
  }

  async stats(): Promise<{ spaces: number; commits: number; bytes: number }> {
    return this.#stmt.stats.get() as { spaces: number; commits: number; bytes: number };
  }

  async close(): Promise<void> {
    // Appends already submitted still get their transaction: a caller may be waiting to ack them.
    if (this.#db.open) this.#appends.flush();
    if (this.#db.open) this.#db.close();
  }
}

/** better-sqlite3 returns BLOBs as Node Buffers; hand out plain Uint8Arrays like the memory store. */
function toBytes(value: unknown): Uint8Array {
  if (!(value instanceof Uint8Array)) throw new Error("Expected a BLOB.");
  return new Uint8Array(value);
}
