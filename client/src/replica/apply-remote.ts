import * as A from "@automerge/automerge";
import type { Table } from "dexie";
import { ShoalError, ValidationError } from "../errors.ts";
import type { CommitId } from "../types.ts";
import type { Commit, StoredCommit } from "./commit.ts";
import { sameHeads } from "./heads.ts";
import { isDeleted, materialize } from "./materialize.ts";
import type { Replica } from "./replica.ts";
import type { DocRow, VectorRow } from "./stored-rows.ts";
import { validateCommit } from "./validate-commit.ts";
import { asStorageError } from "./quota.ts";

/** What `applyCommits` did with what it was given. */
export interface ApplyReport {
  /** Newly applied commits, in the order applied. */
  readonly applied: CommitId[];
  /** Commits this replica already had. */
  readonly duplicates: number;
  /** Commits kept aside until what they depend on arrives (in total, including older ones). */
  readonly pending: number;
  /** Commits refused, with why. They are never applied. */
  readonly rejected: { id: string; error: ShoalError }[];
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
export async function applyRemoteCommits(replica: Replica, commits: readonly Commit[]): Promise<ApplyReport> {
  const report = { applied: [] as CommitId[], duplicates: 0, pending: 0, rejected: [] as ApplyReport["rejected"] };
  const valid: Commit[] = [];
  const known = new Set((await replica.dexie.table("_spaces").toCollection().primaryKeys()) as string[]);
  for (const c of commits) {
    try {
      validateCommit(c);
      if (!known.has(c.space)) throw new ValidationError(`Commit ${c.id} is for a space this device has not joined.`);
      valid.push(c);
    } catch (e) {
      report.rejected.push({ id: String(c?.id), error: e as ShoalError });
    }
  }
  valid.sort((a, b) => (a.device < b.device ? -1 : a.device > b.device ? 1 : a.seq - b.seq));
  let size = 64; // record changes per chunk, adapted to the time a chunk takes
  let first = true;
  while (first || valid.length > 0) {
    first = false;
    // Sized by record changes, not commits: a bootstrap commit may carry a hundred records.
    let take = 0;
    for (let work = 0; take < valid.length && (take === 0 || work + valid[take]!.changes.length <= size); take++) {
      work += valid[take]!.changes.length;
    }
    const chunk = valid.splice(0, take);
    const release = await replica.lock.acquire();
    const t0 = performance.now();
    try {
      replica.assertOpen();
      await replica.drain();
      let r: ChunkResult;
      try {
        r = await applyChunk(replica, chunk, valid.length === 0);
      } catch (e) {
        throw asStorageError(e);
      }
      replica.stats.remoteChunks++;
      replica.stats.remoteCommits += r.applied.length;
      report.applied.push(...r.applied.map((c) => c.id));
      report.duplicates += r.duplicates;
      report.rejected.push(...r.rejected);
      report.pending = r.pending;
      replica.emit(r.applied, "remote");
    } finally {
      release();
    }
    const took = performance.now() - t0;
    size = took > CHUNK_BUDGET_MS ? Math.max(1, size >> 1) : took < CHUNK_BUDGET_MS / 3 ? Math.min(4096, size * 2) : size;
    if (valid.length > 0) await new Promise((r) => setTimeout(r, 0));
  }
  return report;
}

interface ChunkResult {
  applied: StoredCommit[];
  duplicates: number;
  pending: number;
  rejected: { id: string; error: ShoalError }[];
}

/** Most parked commits one call looks at again (they are retried on every later call too). */
const PENDING_RETRY = 2_000;

async function applyChunk(replica: Replica, chunk: Commit[], last: boolean): Promise<ChunkResult> {
  const { dexie, actor } = replica;
  const docsT = dexie.table<DocRow, string>("_docs");
  const commitsT = dexie.table<StoredCommit>("_commits");
  const vectorsT = dexie.table<VectorRow>("_vectors");
  const pendingT = dexie.table<Commit, string>("_pending");
  const rowTables = [...replica.specs.keys()].map((c) => dexie.table(c));
  const result = await dexie.transaction("rw", [docsT, commitsT, vectorsT, pendingT, ...rowTables], async () => {
    const byId = new Map<string, Commit>();
    for (const c of chunk) byId.set(c.id, c);
    const inChunk = new Set(byId.keys());
    const spaces = [...new Set(chunk.map((c) => c.space))];
    // Parked commits are looked at again once per call, with its last chunk, so chunks stay small.
    if (last && spaces.length > 0) {
      for (const p of await pendingT.where("space").anyOf(spaces).limit(PENDING_RETRY).toArray()) if (!byId.has(p.id)) byId.set(p.id, p);
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

    const recIds = [...new Set(ready.flatMap((c) => c.changes.map((rc) => rc.record as string)))];
    const rows = await docsT.bulkGet(recIds);
    const stored = new Map<string, DocRow>();
    rows.forEach((r) => r && stored.set(r.id, r));

    const rejected: { id: string; error: ShoalError }[] = [];
    const accepted = applyAutomerge(replica, actor, ready, stored, rejected, waiting);

    // Write what was accepted.
    const docRows: DocRow[] = [];
    for (const [id, st] of accepted.docs) {
      const deleted = isDeleted(st.doc);
      docRows.push({ id, collection: st.collection, space: st.space, bin: A.save(st.doc), heads: A.getHeads(st.doc), deleted: deleted ? 1 : 0 });
      if (!replica.specs.has(st.collection)) continue; // an app version without this collection keeps the doc only
      const table: Table = dexie.table(st.collection);
      if (deleted) await table.delete(id);
      else await table.put(materialize(id, st.doc));
    }
    await docsT.bulkPut(docRows);
    const storedCommits: StoredCommit[] = accepted.commits.map((c) => ({ ...c, records: c.changes.map((rc) => rc.record) }));
    await commitsT.bulkAdd(storedCommits);
    const newVec = new Map<string, number>();
    for (const c of accepted.commits) newVec.set(`${c.space}|${c.device}`, c.seq);
    await vectorsT.bulkPut([...newVec].map(([k, seq]) => {
      const [space, device] = k.split("|");
      return { space, device, seq } as VectorRow;
    }));
    const settled = [...accepted.commits.map((c) => c.id), ...candidates.filter((c) => c.seq <= (vecRows[pairs.indexOf(`${c.space}|${c.device}`)]?.seq ?? 0)).map((c) => c.id), ...rejected.map((r) => r.id)];
    await pendingT.bulkDelete(settled);
    const toPark = waiting.filter((c) => inChunk.has(c.id));
    const pendingCount = await pendingT.count();
    await pendingT.bulkPut(toPark.slice(0, Math.max(0, MAX_PENDING - pendingCount)));
    return { docs: accepted.docs, applied: storedCommits, duplicates, rejected, pending: await pendingT.count() };
  });
  for (const [id, st] of result.docs) {
    const e = replica.cache.get(id);
    if (e) {
      e.doc = st.doc;
      e.persistedHeads = A.getHeads(st.doc);
    }
  }
  return result;
}

interface DocState {
  doc: A.Doc<unknown>;
  collection: string;
  space: Commit["space"];
}

/**
 * Applies the ready commits' Automerge changes. Fast path: one `applyChanges` per record for the whole
 * chunk. If that leaves a change waiting for a dependency (a commit of another device not yet here) or
 * fails, it goes commit by commit, so exactly the commits that can be applied whole are, and the others
 * (and the later commits of their device) wait.
 */
function applyAutomerge(
  replica: Replica,
  actor: string,
  ready: Commit[],
  stored: Map<string, DocRow>,
  rejected: { id: string; error: ShoalError }[],
  waiting: Commit[],
): { docs: Map<string, DocState>; commits: Commit[] } {
  const start = (id: string, collection: string, space: Commit["space"]): DocState => {
    const row = stored.get(id);
    if (!row) return { doc: A.init({ actor }), collection, space };
    const e = replica.cache.get(id);
    const doc = e && sameHeads(e.persistedHeads, row.heads) ? A.clone(e.doc, { actor }) : A.load(row.bin, { actor });
    return { doc, collection: row.collection, space: row.space };
  };
  const misplaced = (c: Commit, docs: Map<string, DocState>) =>
    c.changes.some((rc) => {
      const st = docs.get(rc.record) ?? stored.get(rc.record);
      return st !== undefined && (st.space !== c.space || st.collection !== rc.collection);
    });

  // Fast path.
  try {
    const docs = new Map<string, DocState>();
    const grouped = new Map<string, Uint8Array[]>();
    for (const c of ready) {
      if (misplaced(c, docs)) throw new Error("slow path");
      for (const rc of c.changes) {
        if (!docs.has(rc.record)) docs.set(rc.record, start(rc.record, rc.collection, c.space));
        const list = grouped.get(rc.record) ?? [];
        list.push(...(rc.changes as Uint8Array[]));
        grouped.set(rc.record, list);
      }
    }
    for (const [id, changes] of grouped) {
      const st = docs.get(id)!;
      replica.stats.applyChangesCalls++;
      [st.doc] = A.applyChanges(st.doc, changes);
      if (A.getMissingDeps(st.doc, []).length > 0) throw new Error("slow path");
    }
    return { docs, commits: ready };
  } catch {
    // fall through to the careful path
  }

  const docs = new Map<string, DocState>();
  const commits: Commit[] = [];
  const blocked = new Set<string>();
  for (const c of ready) {
    const dev = `${c.space}|${c.device}`;
    if (blocked.has(dev)) {
      waiting.push(c);
      continue;
    }
    if (misplaced(c, docs)) {
      rejected.push({ id: c.id, error: new ValidationError(`Commit ${c.id} touches a record of another space or collection.`) });
      blocked.add(dev);
      continue;
    }
    const tentative = new Map<string, DocState>();
    let outcome: "ok" | "wait" | Error = "ok";
    for (const rc of c.changes) {
      const cur = docs.get(rc.record) ?? start(rc.record, rc.collection, c.space);
      try {
        replica.stats.applyChangesCalls++;
        const [doc] = A.applyChanges(A.clone(cur.doc, { actor }), rc.changes as Uint8Array[]);
        if (A.getMissingDeps(doc, []).length > 0) {
          outcome = "wait";
          break;
        }
        tentative.set(rc.record, { ...cur, doc });
      } catch (e) {
        outcome = e instanceof Error ? e : new Error(String(e));
        break;
      }
    }
    if (outcome === "ok") {
      for (const [id, st] of tentative) docs.set(id, st);
      commits.push(c);
    } else {
      blocked.add(dev);
      if (outcome === "wait") waiting.push(c);
      else rejected.push({ id: c.id, error: new ValidationError(`Commit ${c.id} holds changes Automerge cannot apply: ${outcome.message}`) });
    }
  }
  return { docs, commits };
}
