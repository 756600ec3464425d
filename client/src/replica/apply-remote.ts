import * as A from "@automerge/automerge";
import { QuotaExceeded, ShoalError, ValidationError } from "../errors.ts";
import type { CommitId } from "../types.ts";
import type { Commit, StoredCommit } from "./commit.ts";
import { sameHeads } from "./heads.ts";
import { pushTo } from "./group-by.ts";
import { isDeleted, materialize, type Row } from "./materialize.ts";
import type { Replica } from "./replica.ts";
import type { DocRow, QuarantineRow, VectorRow } from "./stored-rows.ts";
import { hasRouting, validateCommit } from "./validate-commit.ts";
import { applyAutomerge, type DocState, type Quarantined } from "./apply-automerge.ts";
import { isContentFailure, isPoisoned, poisoned, quarantineEntry, refusalOf } from "./quarantine.ts";
import { CREATION_HEADS, creationRow } from "./creation.ts";
import { asStorageError } from "./quota.ts";

const EMPTY = new Uint8Array(0);

/** What `applyCommits` did with what it was given. */
export interface ApplyReport {
  /** Newly applied commits, in the order applied. */
  readonly applied: CommitId[];
  /** Commits this replica already had. */
  readonly duplicates: number;
  /** Commits kept aside until what they depend on arrives (in total, including older ones). */
  readonly pending: number;
  /**
   * Commits refused, with why. They are never applied. A refused commit with a sequence slot of a
   * joined space is quarantined (`CommitQuarantined`, listed in `quarantined` too) and its slot counts
   * as held; one reported here is never reported again (a later copy of it is a duplicate).
   */
  readonly rejected: { id: string; error: ShoalError }[];
  /** Commits quarantined by this call (their errors are in `rejected`). */
  readonly quarantined: CommitId[];
}

/** Commits kept aside at most; beyond, the newest are dropped (sync will send them again). */
const MAX_PENDING = 20_000;
/** Aim per chunk for the synchronous Automerge work, so the page stays responsive. */
const CHUNK_BUDGET_MS = 30;

/**
 * Applies commits received from other replicas. Idempotent and order-insensitive: a commit already held
 * is skipped; one that arrives before its device's previous commit, or before a commit its Automerge
 * changes depend on, waits in `_pending` and is applied once the gap fills. A commit is applied whole
 * in one IndexedDB transaction or not at all.
 *
 * Changes are applied per record in one `applyChanges` call for a whole chunk of commits (25x faster
 * than one call per change), and chunks are sized to about 30 ms of work with a yield between them.
 */
export async function applyRemoteCommits(
  replica: Replica,
  commits: readonly Commit[],
  from = "sync",
): Promise<ApplyReport> {
  const report = {
    applied: [] as CommitId[],
    duplicates: 0,
    pending: 0,
    rejected: [] as ApplyReport["rejected"],
    quarantined: [] as CommitId[],
  };
  const valid: Commit[] = [];
  const known = new Set((await replica.dexie.table("_spaces").toCollection().primaryKeys()) as string[]);
  let slice = performance.now();
  for (const c of commits) {
    // Checking a bundle's thousands of commits is work too: let the page breathe between them.
    if (performance.now() - slice > SLICE_MS) {
      await new Promise((r) => setTimeout(r, 0));
      slice = performance.now();
    }
    if (!hasRouting(c)) {
      report.rejected.push({
        id: String(c?.id),
        error: new ValidationError(`Malformed commit ${String(c?.id)}: bad space, device, sequence or id.`),
      });
      continue;
    }
    if (!known.has(c.space)) {
      report.rejected.push({
        id: c.id,
        error: new ValidationError(`Commit ${c.id} is for a space this device has not joined.`),
      });
      continue;
    }
    try {
      validateCommit(c);
      valid.push(c);
    } catch (e) {
      // Authentic but unacceptable: it still takes its slot (as a stand-in without content), so the
      // device's later commits are not stuck behind it.
      const why = refusalOf(e);
      valid.push(poisoned(c, why.reason, why.message));
    }
  }
  valid.sort((a, b) => (a.device < b.device ? -1 : a.device > b.device ? 1 : a.seq - b.seq));
  let size = 64; // record changes per chunk, adapted to the time a chunk takes
  let first = true;
  while (first || valid.length > 0) {
    first = false;
    // Sized by record changes, not commits: a bootstrap commit may carry a hundred records.
    let take = 0;
    for (
      let work = 0;
      take < valid.length && (take === 0 || work + valid[take]!.changes.length <= size);
      take++
    ) {
      work += valid[take]!.changes.length;
    }
    const chunk = valid.splice(0, take);
    const release = await replica.lock.acquire();
    const t0 = performance.now();
    try {
      replica.assertOpen();
      await replica.drain();
      const spaces = valid.length === 0 ? spacesOf(chunk) : [];
      let r: ChunkResult;
      try {
        r = await applyChunk(replica, chunk, spaces, from);
      } catch (e) {
        // One commit's content can fail the whole transaction (IndexedDB cannot clone it, ...): find it
        // by writing the chunk's commits one at a time. Quota and I/O failures surface as they are.
        if (asStorageError(e) instanceof QuotaExceeded || !isContentFailure(e)) throw asStorageError(e);
        r = await isolate(replica, chunk, spaces, from);
      }
      replica.stats.remoteChunks++;
      replica.stats.remoteCommits += r.applied.length;
      report.applied.push(...r.applied.map((c) => c.id));
      report.duplicates += r.duplicates;
      report.rejected.push(...r.rejected);
      report.quarantined.push(...r.quarantined);
      report.pending = r.pending;
      replica.emit(r.applied, "remote");
    } finally {
      release();
    }
    const took = performance.now() - t0;
    size =
      took > CHUNK_BUDGET_MS
        ? Math.max(1, size >> 1)
        : took < CHUNK_BUDGET_MS / 3
          ? Math.min(4096, size * 2)
          : size;
    if (valid.length > 0) await new Promise((r) => setTimeout(r, 0));
  }
  return report;
}

function spacesOf(commits: readonly Commit[]): Commit["space"][] {
  return [...new Set(commits.map((c) => c.space))];
}

/**
 * Applies a chunk whose transaction failed one commit at a time, so only the commit that storage
 * refuses is quarantined (reason `storage`) and the others apply. Parked commits are retried last,
 * alone, so one of them failing cannot be blamed on a commit of the chunk.
 */
async function isolate(
  replica: Replica,
  chunk: readonly Commit[],
  retrySpaces: readonly Commit["space"][],
  from: string,
): Promise<ChunkResult> {
  const total: ChunkResult = {
    applied: [],
    duplicates: 0,
    pending: 0,
    rejected: [],
    quarantined: [],
    docs: new Map(),
  };
  const add = (r: ChunkResult) => {
    total.applied.push(...r.applied);
    total.duplicates += r.duplicates;
    total.rejected.push(...r.rejected);
    total.quarantined.push(...r.quarantined);
    total.pending = r.pending;
  };
  for (const c of chunk) {
    try {
      add(await applyChunk(replica, [c], [], from));
    } catch (e) {
      if (asStorageError(e) instanceof QuotaExceeded || !isContentFailure(e)) throw asStorageError(e);
      const why = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
      add(await applyChunk(replica, [poisoned(c, "storage", `storage refused it (${why})`)], [], from));
    }
  }
  if (retrySpaces.length > 0) {
    try {
      add(await applyChunk(replica, [], retrySpaces, from));
    } catch (e) {
      if (asStorageError(e) instanceof QuotaExceeded || !isContentFailure(e)) throw asStorageError(e);
      // A parked commit that cannot be written stays parked; the next call tries again.
    }
  }
  return total;
}

interface ChunkResult {
  applied: StoredCommit[];
  duplicates: number;
  pending: number;
  rejected: { id: string; error: ShoalError }[];
  quarantined: CommitId[];
  docs: Map<string, DocState>;
}

/** Most parked commits one call looks at again (they are retried on every later call too). */
const PENDING_RETRY = 2_000;
/** Most quarantine rows of a space read to find dependents (a healthy space has none). */
const QUARANTINE_LOOKUP = 10_000;

/** Longest stretch of Automerge work between two yields to the event loop. */
const SLICE_MS = 40;
/** Times a chunk is prepared again because another tab wrote what it read meanwhile. */
const MAX_REPLANS = 20;

/**
 * Applies one chunk whole or not at all, in three steps, so the page is never held for long: read what
 * the chunk needs (one read transaction); do the Automerge work and prepare every row outside any
 * transaction, yielding to the event loop every ~40 ms (an IndexedDB transaction would auto-commit at
 * the first yield); then write it all in one transaction, which first checks that nothing it read
 * changed meanwhile (this tab's writes wait for the replica's lock; another tab's local commit may
 * have touched a record or a vector) and otherwise starts over.
 */
async function applyChunk(
  replica: Replica,
  chunk: Commit[],
  retrySpaces: readonly Commit["space"][],
  from: string,
): Promise<ChunkResult> {
  // The common bootstrap case, new records as creations only, needs no Automerge work: one transaction.
  if (chunk.every((c) => c.changes.every((rc) => rc.changes.length === 0))) {
    const { dexie } = replica;
    const tables = ["_docs", "_commits", "_vectors", "_pending", "_quarantine", ...replica.specs.keys()];
    const light = await dexie.transaction("rw", tables, async () => {
      const plan = await planChunk(replica, chunk, retrySpaces, true);
      const busy =
        plan.stored.size > 0 || plan.ready.some((c) => c.changes.some((rc) => rc.changes.length > 0));
      if (busy) return null; // existing records or parked edits: the sliced path below
      // No pauses: awaiting anything but IndexedDB would let this transaction commit.
      const accepted = await applyAutomerge(
        replica,
        replica.actor,
        plan.ready,
        plan.stored,
        plan.waiting,
        plan.known,
        null,
      );
      return writeChunk(
        replica,
        plan,
        accepted,
        await prepareWrites(replica, accepted.docs, null),
        from,
        true,
      );
    });
    if (light) return cached(replica, light);
  }
  for (let attempt = 0; ; attempt++) {
    const plan = await planChunk(replica, chunk, retrySpaces);
    let last = performance.now();
    const pause = async () => {
      if (performance.now() - last < SLICE_MS) return;
      await new Promise((r) => setTimeout(r, 0));
      last = performance.now();
    };
    const accepted = await applyAutomerge(
      replica,
      replica.actor,
      plan.ready,
      plan.stored,
      plan.waiting,
      plan.known,
      pause,
    );
    const writes = await prepareWrites(replica, accepted.docs, pause);
    const result = await writeChunk(replica, plan, accepted, writes, from);
    if (result) return cached(replica, result);
    if (attempt >= MAX_REPLANS)
      throw new ShoalError("SyncError", "Other tabs kept changing the records being synced; will retry.");
  }
}

/** Hands the documents a chunk wrote to the replica's cache of loaded records. */
function cached(replica: Replica, result: ChunkResult): ChunkResult {
  for (const [id, st] of result.docs) {
    const e = replica.cache.get(id);
    if (!e) continue;
    e.doc = st.doc;
    e.create = st.create;
    e.creationOnly = false;
    e.persistedHeads = st.doc ? A.getHeads(st.doc) : [...CREATION_HEADS];
  }
  return result;
}

/** What a chunk read before its Automerge work. */
interface ChunkPlan {
  inChunk: Set<string>;
  candidates: Commit[];
  pairs: string[];
  /** Each pair's vector row as read (undefined: none). */
  vecRows: (VectorRow | undefined)[];
  ready: Commit[];
  waiting: Commit[];
  duplicates: number;
  recIds: string[];
  stored: Map<string, DocRow>;
  known: Quarantined;
}

async function planChunk(
  replica: Replica,
  chunk: Commit[],
  retrySpaces: readonly Commit["space"][],
  inTransaction = false,
): Promise<ChunkPlan> {
  const { dexie } = replica;
  const docsT = dexie.table<DocRow, string>("_docs");
  const vectorsT = dexie.table<VectorRow>("_vectors");
  const pendingT = dexie.table<Commit, string>("_pending");
  const quarantineT = dexie.table<QuarantineRow, string>("_quarantine");
  const read = async (): Promise<ChunkPlan> => {
    const byId = new Map<string, Commit>();
    for (const c of chunk) byId.set(c.id, c);
    const inChunk = new Set(byId.keys());
    // Parked commits are looked at again once per call, with its last chunk, so chunks stay small.
    if (retrySpaces.length > 0) {
      for (const p of await pendingT.where("space").anyOf(retrySpaces).limit(PENDING_RETRY).toArray())
        if (!byId.has(p.id)) byId.set(p.id, p);
    }
    const candidates = [...byId.values()].sort((a, b) =>
      a.device < b.device ? -1 : a.device > b.device ? 1 : a.seq - b.seq,
    );
    const pairs = [...new Set(candidates.map((c) => `${c.space}|${c.device}`))];
    const vecRows = await vectorsT.bulkGet(pairs.map((p) => p.split("|")));
    const vec = new Map(pairs.map((p, i) => [p, vecRows[i]?.seq ?? 0]));
    let duplicates = 0;
    const ready: Commit[] = [];
    const waiting: Commit[] = [];
    for (const c of candidates) {
      const key = `${c.space}|${c.device}`;
      const v = vec.get(key)!;
      if (c.seq <= v) {
        if (inChunk.has(c.id)) duplicates++;
      } else if (c.seq === v + 1) {
        ready.push(c);
        vec.set(key, c.seq);
      } else waiting.push(c);
    }
    const recIds = [
      ...new Set(ready.flatMap((c) => (isPoisoned(c) ? [] : c.changes.map((rc) => rc.record as string)))),
    ];
    const stored = new Map<string, DocRow>();
    for (const r of await docsT.bulkGet(recIds)) if (r) stored.set(r.id, r);
    const known: Quarantined = { checksums: new Set(), creations: new Set() };
    const readySpaces = spacesOf(ready);
    if (readySpaces.length > 0) {
      const rows = await quarantineT.where("space").anyOf(readySpaces).limit(QUARANTINE_LOOKUP).toArray();
      for (const q of rows) {
        for (const x of q.checksums) known.checksums.add(x);
        for (const x of q.creations) known.creations.add(x);
      }
    }
    return { inChunk, candidates, pairs, vecRows, ready, waiting, duplicates, recIds, stored, known };
  };
  return inTransaction ? read() : dexie.transaction("r", [docsT, vectorsT, pendingT, quarantineT], read);
}

/** The rows a chunk writes, prepared (Automerge saves, materialized rows) before its transaction. */
interface ChunkWrites {
  docRows: DocRow[];
  puts: Map<string, Row[]>;
  dels: Map<string, string[]>;
}

async function prepareWrites(
  replica: Replica,
  docs: Map<string, DocState>,
  pause: (() => Promise<void>) | null,
): Promise<ChunkWrites> {
  const docRows: DocRow[] = [];
  const puts = new Map<string, Row[]>();
  const dels = new Map<string, string[]>();
  for (const [id, st] of docs) {
    if (pause) await pause();
    // An app version without this collection keeps the record only in `_docs`.
    const known = replica.specs.has(st.collection);
    if (st.doc === null) {
      if (!st.create) continue;
      docRows.push({
        id,
        collection: st.collection,
        space: st.space,
        bin: EMPTY,
        heads: [...CREATION_HEADS],
        deleted: 0,
        create: st.create,
      });
      if (known) pushTo(puts, st.collection, creationRow(id, st.create));
      continue;
    }
    const deleted = isDeleted(st.doc);
    docRows.push({
      id,
      collection: st.collection,
      space: st.space,
      bin: A.save(st.doc),
      heads: A.getHeads(st.doc),
      deleted: deleted ? 1 : 0,
    });
    if (!known) continue;
    if (deleted) pushTo(dels, st.collection, id);
    else pushTo(puts, st.collection, materialize(id, st.doc));
  }
  return { docRows, puts, dels };
}

/** Writes a prepared chunk in one transaction, or returns null if what it read has changed. */
async function writeChunk(
  replica: Replica,
  plan: ChunkPlan,
  accepted: Awaited<ReturnType<typeof applyAutomerge>>,
  writes: ChunkWrites,
  from: string,
  inTransaction = false,
): Promise<ChunkResult | null> {
  const { dexie } = replica;
  const docsT = dexie.table<DocRow, string>("_docs");
  const commitsT = dexie.table<StoredCommit>("_commits");
  const vectorsT = dexie.table<VectorRow>("_vectors");
  const pendingT = dexie.table<Commit, string>("_pending");
  const quarantineT = dexie.table<QuarantineRow, string>("_quarantine");
  const rowTables = [...replica.specs.keys()].map((c) => dexie.table(c));
  const { candidates, pairs, vecRows, waiting, inChunk } = plan;
  const write = async (): Promise<ChunkResult | null> => {
    const vecNow = await vectorsT.bulkGet(pairs.map((p) => p.split("|")));
    if (vecNow.some((v, i) => (v?.seq ?? 0) !== (vecRows[i]?.seq ?? 0))) return null;
    const docsNow = await docsT.bulkGet(plan.recIds);
    for (let i = 0; i < plan.recIds.length; i++) {
      const was = plan.stored.get(plan.recIds[i]!);
      const now = docsNow[i];
      if (!was !== !now || (was && now && !sameHeads(was.heads, now.heads))) return null;
    }
    for (const [collection, rows] of writes.puts) await dexie.table(collection).bulkPut(rows);
    for (const [collection, ids] of writes.dels) await dexie.table(collection).bulkDelete(ids);
    await docsT.bulkPut(writes.docRows);
    const storedCommits: StoredCommit[] = accepted.commits.map((c) => ({
      ...c,
      records: c.changes.map((rc) => rc.record),
    }));
    await commitsT.bulkAdd(storedCommits);
    const now = Date.now();
    const entries = accepted.quarantined.map((p) => quarantineEntry(p, from, now));
    await quarantineT.bulkPut(entries.map((e) => e.row));
    // A quarantined commit holds its slot: the vector moves past it as past an applied one.
    const newVec = new Map<string, number>();
    for (const c of [...accepted.commits, ...accepted.quarantined]) {
      const k = `${c.space}|${c.device}`;
      newVec.set(k, Math.max(newVec.get(k) ?? 0, c.seq));
    }
    await vectorsT.bulkPut(
      [...newVec].map(([k, seq]) => {
        const [space, device] = k.split("|");
        return { space, device, seq } as VectorRow;
      }),
    );
    const settled = [
      ...accepted.commits.map((c) => c.id),
      ...accepted.quarantined.map((c) => c.id),
      ...candidates
        .filter((c) => c.seq <= (vecRows[pairs.indexOf(`${c.space}|${c.device}`)]?.seq ?? 0))
        .map((c) => c.id),
    ];
    await pendingT.bulkDelete(settled);
    const toPark = waiting.filter((c) => inChunk.has(c.id));
    const pendingCount = await pendingT.count();
    await pendingT.bulkPut(toPark.slice(0, Math.max(0, MAX_PENDING - pendingCount)));
    return {
      docs: accepted.docs,
      applied: storedCommits,
      duplicates: plan.duplicates,
      rejected: entries.map((e) => ({ id: e.row.id, error: e.error as ShoalError })),
      quarantined: entries.map((e) => e.row.id as CommitId),
      pending: await pendingT.count(),
    };
  };
  return inTransaction
    ? write()
    : dexie.transaction("rw", [docsT, commitsT, vectorsT, pendingT, quarantineT, ...rowTables], write);
}
