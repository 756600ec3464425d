import * as A from "@automerge/automerge";
import type { Table } from "dexie";
import { ShoalError } from "../errors.ts";
import type { CommitId } from "../types.ts";
import { applyAutomerge, type AutomergeOutcome, type DocState, type Quarantined } from "./apply-automerge.ts";
import type { Commit, StoredCommit } from "./commit.ts";
import { CREATION_HEADS } from "./creation.ts";
import { prepareWrites, rowWork, type ChunkWrites } from "./prepare-writes.ts";
import { sameHeads } from "./heads.ts";
import { isPoisoned, quarantineEntry } from "./quarantine.ts";
import { admitByMembership } from "./admit-by-membership.ts";
import { erasedAmong, recordsOf, withoutErased } from "./erased.ts";
import type { Replica } from "./replica.ts";
import { runNow, runSliced, SLICE_OPS, type Pause, type Slices } from "./slices.ts";
import { TASK_BUDGET_MS, yieldToPage } from "./task-budget.ts";
import type { DocRow, MemberRow, QuarantineRow, SpaceRow, VectorRow } from "./stored-rows.ts";

/** Commits kept aside at most; beyond, the newest are dropped (sync will send them again). */
const MAX_PENDING = 20_000;

/** The spaces of some commits, once each. */
export function spacesOf(commits: readonly Commit[]): Commit["space"][] {
  return [...new Set(commits.map((c) => c.space))];
}

/** What applying one chunk did. */
export interface ChunkResult {
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

/** Longest stretch of Automerge work between two yields to the event loop (issue 15: no task over 50 ms). */
export const SLICE_MS = TASK_BUDGET_MS;
export { SLICE_OPS } from "./slices.ts";
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
export async function applyChunk(
  replica: Replica,
  chunk: Commit[],
  retrySpaces: readonly Commit["space"][],
  from: string,
): Promise<ChunkResult> {
  // The common bootstrap case, new records as creations only, needs no Automerge work: one transaction.
  if (chunk.every((c) => c.changes.every((rc) => rc.changes.length === 0))) {
    const { dexie } = replica;
    const tables = [
      "_docs",
      "_commits",
      "_vectors",
      "_pending",
      "_quarantine",
      "_members",
      "_spaces",
      "_erased",
      ...replica.specs.keys(),
    ];
    const light = await dexie.transaction("rw", tables, async () => {
      const plan = await planChunk(replica, chunk, retrySpaces, true);
      const busy =
        plan.stored.size > 0 || plan.ready.some((c) => c.changes.some((rc) => rc.changes.length > 0));
      if (busy) return null; // existing records or parked edits: the sliced path below
      // Run to the end synchronously: inside a transaction, awaiting anything but Dexie's own
      // promises (even between the steps of this work) makes it commit early (see `runNow`).
      const accepted = runNow(
        applyAutomerge(
          replica,
          replica.actor,
          plan.ready,
          plan.stored,
          plan.waiting,
          plan.known,
          false,
          SLICE_OPS,
        ),
      );
      return writeChunk(replica, plan, accepted, runNow(prepareWrites(replica, accepted.docs)), from, true);
    });
    if (light) return cached(replica, light);
  }
  for (let attempt = 0; ; attempt++) {
    const plan = await planChunk(replica, chunk, retrySpaces);
    const pause = slicer(replica);
    const accepted = await runSliced(
      applyAutomerge(
        replica,
        replica.actor,
        plan.ready,
        plan.stored,
        plan.waiting,
        plan.known,
        true,
        SLICE_OPS,
      ),
      pause,
    );
    const writes = await runSliced(prepareWrites(replica, accepted.docs), pause);
    // The write transaction cannot yield: it starts a slice of its own when it stores large rows.
    await pause(Math.min(SLICE_OPS, rowWork(accepted.docs)));
    const result = await writeChunk(replica, plan, accepted, writes, from);
    if (result) return cached(replica, result);
    if (attempt >= MAX_REPLANS)
      throw new ShoalError("SyncError", "Other tabs kept changing the records being synced; will retry.");
  }
}

/**
 * The pause of one chunk's work: yields to the event loop (a macrotask, so input and rendering get
 * their turn) when `SLICE_MS` have passed since the last yield, or when `ops` more operations would
 * take the slice over `SLICE_OPS`. Counts yields and the most operations of a slice in `replica.stats`.
 */
function slicer(replica: Replica): Pause {
  let last = performance.now();
  let ops = 0;
  return async (more) => {
    if (ops + more > SLICE_OPS || performance.now() - last >= SLICE_MS) {
      if (ops > 0 || performance.now() - last >= SLICE_MS) {
        await yieldToPage();
        replica.stats.applyYields++;
      }
      last = performance.now();
      ops = 0;
    }
    ops += more;
    if (ops > replica.stats.maxOpsPerSlice) replica.stats.maxOpsPerSlice = ops;
  };
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

/**
 * Up to `limit` rows in all of a table's `space` index for `spaces`: one bounded range read per
 * space, not an `anyOf` cursor (whose every step can cost the whole run of equal keys in
 * fake-indexeddb, quadratic in the rows of one space).
 */
async function perSpace<T>(
  table: Table<T, string>,
  spaces: readonly Commit["space"][],
  limit: number,
): Promise<T[]> {
  const out: T[] = [];
  for (const s of spaces) {
    if (out.length >= limit) break;
    out.push(
      ...(await table
        .where("space")
        .equals(s)
        .limit(limit - out.length)
        .toArray()),
    );
  }
  return out;
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
  const membersT = dexie.table<MemberRow, string>("_members");
  const spacesT = dexie.table<SpaceRow, string>("_spaces");
  const read = async (): Promise<ChunkPlan> => {
    const byId = new Map<string, Commit>();
    for (const c of chunk) byId.set(c.id, c);
    const inChunk = new Set(byId.keys());
    // Parked commits are looked at again once per call, with its last chunk, so chunks stay small.
    if (retrySpaces.length > 0) {
      for (const p of await perSpace(pendingT, retrySpaces, PENDING_RETRY))
        if (!byId.has(p.id)) byId.set(p.id, p);
    }
    // An erased record's changes are dropped from whatever carries them, whichever source it came
    // from; the rest of each commit applies (PROTOCOL.md 12).
    const erased = await erasedAmong(dexie, recordsOf([...byId.values()]));
    if (erased.size > 0) for (const [id, c] of byId) byId.set(id, withoutErased(c, erased));
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
    await admitByMembership(ready, waiting, membersT, spacesT);
    const recIds = [
      ...new Set(ready.flatMap((c) => (isPoisoned(c) ? [] : c.changes.map((rc) => rc.record as string)))),
    ];
    const stored = new Map<string, DocRow>();
    for (const r of await docsT.bulkGet(recIds)) if (r) stored.set(r.id, r);
    const known: Quarantined = { checksums: new Set(), creations: new Set() };
    const readySpaces = spacesOf(ready);
    if (readySpaces.length > 0) {
      const rows = await perSpace(quarantineT, readySpaces, QUARANTINE_LOOKUP);
      for (const q of rows) {
        for (const x of q.checksums) known.checksums.add(x);
        for (const x of q.creations) known.creations.add(x);
      }
    }
    return { inChunk, candidates, pairs, vecRows, ready, waiting, duplicates, recIds, stored, known };
  };
  return inTransaction
    ? read()
    : dexie.transaction(
        "r",
        [docsT, vectorsT, pendingT, quarantineT, membersT, spacesT, dexie.table("_erased")],
        read,
      );
}

/** Writes a prepared chunk in one transaction, or returns null if what it read has changed. */
async function writeChunk(
  replica: Replica,
  plan: ChunkPlan,
  accepted: AutomergeOutcome,
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
  const membersT = dexie.table<MemberRow, string>("_members");
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
    const ops = storedCommits.filter((c) => c.membership !== undefined);
    if (ops.length > 0)
      await membersT.bulkPut(ops.map((c) => ({ space: c.space, id: c.membershipId!, op: c.membership! })));
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
    const heldBefore = new Map(pairs.map((p, i) => [p, vecRows[i]?.seq ?? 0]));
    const settled = [
      ...accepted.commits.map((c) => c.id),
      ...accepted.quarantined.map((c) => c.id),
      ...candidates.filter((c) => c.seq <= (heldBefore.get(`${c.space}|${c.device}`) ?? 0)).map((c) => c.id),
    ];
    await pendingT.bulkDelete(settled);
    const toPark = waiting.filter((c) => inChunk.has(c.id));
    const pendingCount = await pendingT.count();
    await pendingT.bulkPut(toPark.slice(0, Math.max(0, MAX_PENDING - pendingCount)));
    // A parked membership commit's operation joins the log at once: it is signed on its own, and it
    // may be what opens the commits it waits behind (a key shared after its author wrote under it).
    const parkedOps = toPark.filter((c) => c.membership !== undefined && !isPoisoned(c));
    if (parkedOps.length > 0)
      await membersT.bulkPut(
        parkedOps.map((c) => ({ space: c.space, id: c.membershipId!, op: c.membership! })),
      );
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
    : dexie.transaction(
        "rw",
        [docsT, commitsT, vectorsT, pendingT, quarantineT, membersT, ...rowTables],
        write,
      );
}
