import * as A from "@automerge/automerge";
import { ShoalError, ValidationError } from "../errors.ts";
import type { CommitId } from "../types.ts";
import type { Commit, StoredCommit } from "./commit.ts";
import { sameHeads } from "./heads.ts";
import { pushTo } from "./group-by.ts";
import { isDeleted, materialize, type Row } from "./materialize.ts";
import type { Replica } from "./replica.ts";
import type { DocRow, VectorRow } from "./stored-rows.ts";
import { validateCommit } from "./validate-commit.ts";
import { buildFromCreation, CREATION_HEADS, creationRow, type Creation } from "./creation.ts";
import { isCreationOnly } from "./replica.ts";

const EMPTY = new Uint8Array(0);
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
  const report = {
    applied: [] as CommitId[],
    duplicates: 0,
    pending: 0,
    rejected: [] as ApplyReport["rejected"],
  };
  const valid: Commit[] = [];
  const known = new Set((await replica.dexie.table("_spaces").toCollection().primaryKeys()) as string[]);
  for (const c of commits) {
    try {
      validateCommit(c);
      if (!known.has(c.space))
        throw new ValidationError(`Commit ${c.id} is for a space this device has not joined.`);
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
  const result = await dexie.transaction(
    "rw",
    [docsT, commitsT, vectorsT, pendingT, ...rowTables],
    async () => {
      const byId = new Map<string, Commit>();
      for (const c of chunk) byId.set(c.id, c);
      const inChunk = new Set(byId.keys());
      const spaces = [...new Set(chunk.map((c) => c.space))];
      // Parked commits are looked at again once per call, with its last chunk, so chunks stay small.
      if (last && spaces.length > 0) {
        for (const p of await pendingT.where("space").anyOf(spaces).limit(PENDING_RETRY).toArray())
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

      const recIds = [...new Set(ready.flatMap((c) => c.changes.map((rc) => rc.record as string)))];
      const rows = await docsT.bulkGet(recIds);
      const stored = new Map<string, DocRow>();
      rows.forEach((r) => r && stored.set(r.id, r));

      const rejected: { id: string; error: ShoalError }[] = [];
      const accepted = applyAutomerge(replica, actor, ready, stored, rejected, waiting);

      // Write what was accepted.
      const docRows: DocRow[] = [];
      const puts = new Map<string, Row[]>();
      const dels = new Map<string, string[]>();
      for (const [id, st] of accepted.docs) {
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
      for (const [collection, rows] of puts) await dexie.table(collection).bulkPut(rows);
      for (const [collection, ids] of dels) await dexie.table(collection).bulkDelete(ids);
      await docsT.bulkPut(docRows);
      const storedCommits: StoredCommit[] = accepted.commits.map((c) => ({
        ...c,
        records: c.changes.map((rc) => rc.record),
      }));
      await commitsT.bulkAdd(storedCommits);
      const newVec = new Map<string, number>();
      for (const c of accepted.commits) newVec.set(`${c.space}|${c.device}`, c.seq);
      await vectorsT.bulkPut(
        [...newVec].map(([k, seq]) => {
          const [space, device] = k.split("|");
          return { space, device, seq } as VectorRow;
        }),
      );
      const settled = [
        ...accepted.commits.map((c) => c.id),
        ...candidates
          .filter((c) => c.seq <= (vecRows[pairs.indexOf(`${c.space}|${c.device}`)]?.seq ?? 0))
          .map((c) => c.id),
        ...rejected.map((r) => r.id),
      ];
      await pendingT.bulkDelete(settled);
      const toPark = waiting.filter((c) => inChunk.has(c.id));
      const pendingCount = await pendingT.count();
      await pendingT.bulkPut(toPark.slice(0, Math.max(0, MAX_PENDING - pendingCount)));
      return {
        docs: accepted.docs,
        applied: storedCommits,
        duplicates,
        rejected,
        pending: await pendingT.count(),
      };
    },
  );
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

interface DocState {
  /** Null while the record is only its creation (`create`), or not yet anything. */
  doc: A.Doc<unknown> | null;
  create?: Creation;
  collection: string;
  space: Commit["space"];
}

/**
 * Applies the ready commits' changes. A record created by a commit stays as its creation (no Automerge
 * work) unless later changes in the same chunk edit it. Fast path: one `applyChanges` per record for
 * the whole chunk. If that leaves a change waiting for a dependency (a commit of another device not yet
 * here) or fails, it goes commit by commit, so exactly the commits that can be applied whole are, and
 * the others (and the later commits of their device) wait.
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
    if (!row) return { doc: null, collection, space };
    if (isCreationOnly(row))
      return { doc: null, create: row.create!, collection: row.collection, space: row.space };
    const e = replica.cache.get(id);
    const doc =
      e?.doc && sameHeads(e.persistedHeads, row.heads)
        ? A.clone(e.doc, { actor })
        : A.load(row.bin, { actor });
    return { doc, collection: row.collection, space: row.space };
  };
  const built = (id: string, st: DocState): A.Doc<unknown> =>
    st.doc ?? (st.create ? buildFromCreation(id, st.create, actor) : A.init({ actor }));
  /** Applies one record change to a state, returning the new state (the old one stays usable). */
  const step = (id: string, st: DocState, create: Creation | undefined, changes: Uint8Array[]): DocState => {
    let next: DocState = st;
    if (create) {
      next =
        st.doc === null && st.create === undefined && !stored.has(id)
          ? { ...st, create }
          : {
              ...st,
              doc: A.merge(A.clone(built(id, st), { actor }), buildFromCreation(id, create, actor)),
              create: undefined,
            };
    }
    if (changes.length > 0) {
      const base = next.doc ? A.clone(next.doc, { actor }) : built(id, next);
      replica.stats.applyChangesCalls++;
      const [doc] = A.applyChanges(base, changes);
      next = { ...next, doc, create: undefined };
    }
    return next;
  };
  const waits = (st: DocState) => st.doc !== null && A.getMissingDeps(st.doc, []).length > 0;
  const misplaced = (c: Commit, docs: Map<string, DocState>) =>
    c.changes.some((rc) => {
      const st = docs.get(rc.record) ?? stored.get(rc.record);
      return st !== undefined && (st.space !== c.space || st.collection !== rc.collection);
    });

  // Fast path.
  try {
    const docs = new Map<string, DocState>();
    const grouped = new Map<string, { create?: Creation; changes: Uint8Array[] }>();
    for (const c of ready) {
      if (misplaced(c, docs)) throw new Error("slow path");
      for (const rc of c.changes) {
        if (!docs.has(rc.record)) docs.set(rc.record, start(rc.record, rc.collection, c.space));
        const g = grouped.get(rc.record) ?? { changes: [] };
        if (rc.create) {
          if (g.create || g.changes.length > 0) throw new Error("slow path");
          g.create = rc.create;
        }
        g.changes.push(...(rc.changes as Uint8Array[]));
        grouped.set(rc.record, g);
      }
    }
    for (const [id, g] of grouped) {
      const st = step(id, docs.get(id)!, g.create, g.changes);
      if (waits(st)) throw new Error("slow path");
      docs.set(id, st);
    }
    return { docs, commits: ready };
  } catch {
    // fall through to the careful path
  }

  // Careful path: per device, commits in sequence; rounds until nothing more applies, so a commit that
  // depends on another device's commit later in the chunk still gets in.
  const docs = new Map<string, DocState>();
  const commits: Commit[] = [];
  const queues = new Map<string, Commit[]>();
  for (const c of ready) {
    const dev = `${c.space}|${c.device}`;
    const q = queues.get(dev) ?? [];
    q.push(c);
    queues.set(dev, q);
  }
  const attempt = (c: Commit): "ok" | "wait" | Error => {
    if (misplaced(c, docs))
      return new ValidationError(`Commit ${c.id} touches a record of another space or collection.`);
    const tentative = new Map<string, DocState>();
    for (const rc of c.changes) {
      const cur = tentative.get(rc.record) ?? docs.get(rc.record) ?? start(rc.record, rc.collection, c.space);
      try {
        const st = step(rc.record, cur, rc.create, rc.changes as Uint8Array[]);
        if (waits(st)) return "wait";
        tentative.set(rc.record, st);
      } catch (e) {
        return e instanceof Error ? e : new Error(String(e));
      }
    }
    for (const [id, st] of tentative) docs.set(id, st);
    return "ok";
  };
  for (let progress = true; progress;) {
    progress = false;
    for (const [dev, q] of queues) {
      while (q.length > 0) {
        const c = q[0]!;
        const outcome = attempt(c);
        if (outcome === "wait") break;
        q.shift();
        if (outcome === "ok") {
          commits.push(c);
          progress = true;
          continue;
        }
        rejected.push({
          id: c.id,
          error:
            outcome instanceof ValidationError
              ? outcome
              : new ValidationError(
                  `Commit ${c.id} holds changes Automerge cannot apply: ${outcome.message}`,
                ),
        });
        // The device's later commits can never follow a refused one: they wait (and are never applied).
        waiting.push(...q.splice(0));
        queues.delete(dev);
        break;
      }
    }
  }
  for (const q of queues.values()) waiting.push(...q);
  return { docs, commits };
}
