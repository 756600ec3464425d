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
import { checkContent, reservedRootKey } from "./content-check.ts";
import {
  isContentFailure,
  isPoisoned,
  poisoned,
  quarantineEntry,
  refusalOf,
  type Poisoned,
} from "./quarantine.ts";
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
  for (const c of commits) {
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

/** What is known to be quarantined: commits depending on it can never apply. */
interface Quarantined {
  checksums: Set<string>;
  creations: Set<string>;
}

async function applyChunk(
  replica: Replica,
  chunk: Commit[],
  retrySpaces: readonly Commit["space"][],
  from: string,
): Promise<ChunkResult> {
  const { dexie, actor } = replica;
  const docsT = dexie.table<DocRow, string>("_docs");
  const commitsT = dexie.table<StoredCommit>("_commits");
  const vectorsT = dexie.table<VectorRow>("_vectors");
  const pendingT = dexie.table<Commit, string>("_pending");
  const quarantineT = dexie.table<QuarantineRow, string>("_quarantine");
  const rowTables = [...replica.specs.keys()].map((c) => dexie.table(c));
  const result = await dexie.transaction(
    "rw",
    [docsT, commitsT, vectorsT, pendingT, quarantineT, ...rowTables],
    async () => {
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
      const rows = await docsT.bulkGet(recIds);
      const stored = new Map<string, DocRow>();
      rows.forEach((r) => r && stored.set(r.id, r));
      const known: Quarantined = { checksums: new Set(), creations: new Set() };
      const readySpaces = spacesOf(ready);
      if (readySpaces.length > 0) {
        for (const q of await quarantineT
          .where("space")
          .anyOf(readySpaces)
          .limit(QUARANTINE_LOOKUP)
          .toArray()) {
          for (const x of q.checksums) known.checksums.add(x);
          for (const x of q.creations) known.creations.add(x);
        }
      }

      const accepted = applyAutomerge(replica, actor, ready, stored, waiting, known);

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
        duplicates,
        rejected: entries.map((e) => ({ id: e.row.id, error: e.error as ShoalError })),
        quarantined: entries.map((e) => e.row.id as CommitId),
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

/** Why a record's document, once changed, may not be stored: a reserved root key or a content limit. */
function docProblem(st: DocState): { reason: string; message: string } | null {
  if (st.doc === null) return null;
  const reserved = reservedRootKey(st.doc as object, true);
  if (reserved !== null) return { reason: "reserved", message: `it sets the reserved field "${reserved}"` };
  const why = checkContent(st.doc);
  return why ? { reason: "limits", message: `the record would hold ${why}` } : null;
}

/**
 * Applies the ready commits' changes. A record created by a commit stays as its creation (no Automerge
 * work) unless later changes in the same chunk edit it. Fast path: one `applyChanges` per record for
 * the whole chunk. If that leaves a change waiting for a dependency (a commit of another device not yet
 * here), fails, or a commit was refused, it goes commit by commit, so exactly the commits that can be
 * applied whole are; a commit that cannot be applied, or that depends on a quarantined one, is
 * quarantined in its slot and its device's later commits go on.
 */
function applyAutomerge(
  replica: Replica,
  actor: string,
  ready: Commit[],
  stored: Map<string, DocRow>,
  waiting: Commit[],
  known: Quarantined,
): { docs: Map<string, DocState>; commits: Commit[]; quarantined: Poisoned[] } {
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
  const missing = (st: DocState) => (st.doc === null ? [] : A.getMissingDeps(st.doc, []));
  const misplaced = (c: Commit, docs: Map<string, DocState>) =>
    c.changes.some((rc) => {
      const st = docs.get(rc.record) ?? stored.get(rc.record);
      return st !== undefined && (st.space !== c.space || st.collection !== rc.collection);
    });

  // Fast path.
  try {
    if (ready.some(isPoisoned)) throw new Error("slow path");
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
      if (missing(st).length > 0 || docProblem(st)) throw new Error("slow path");
      docs.set(id, st);
    }
    return { docs, commits: ready, quarantined: [] };
  } catch {
    // fall through to the careful path
  }

  // Careful path: per device, commits in sequence; rounds until nothing more applies, so a commit that
  // depends on another device's commit later in the chunk still gets in.
  const docs = new Map<string, DocState>();
  const commits: Commit[] = [];
  const quarantined: Poisoned[] = [];
  const queues = new Map<string, Commit[]>();
  for (const c of ready) {
    const dev = `${c.space}|${c.device}`;
    const q = queues.get(dev) ?? [];
    q.push(c);
    queues.set(dev, q);
  }
  type Outcome = "ok" | "wait" | { reason: string; message: string };
  const attempt = (c: Commit): Outcome => {
    if (isPoisoned(c)) return c.poison;
    if (misplaced(c, docs))
      return { reason: "misplaced", message: "it touches a record of another space or collection" };
    const tentative = new Map<string, DocState>();
    for (const rc of c.changes) {
      const cur = tentative.get(rc.record) ?? docs.get(rc.record) ?? start(rc.record, rc.collection, c.space);
      let st: DocState;
      try {
        st = step(rc.record, cur, rc.create, rc.changes as Uint8Array[]);
      } catch (e) {
        return {
          reason: "automerge",
          message: `Automerge cannot apply its changes: ${(e as Error)?.message ?? e}`,
        };
      }
      const deps = missing(st);
      if (deps.length > 0) {
        // A dependency that is quarantined never arrives: neither can this commit, ever.
        const onQuarantined =
          deps.some((h) => known.checksums.has(h.slice(0, 8))) ||
          (known.creations.has(rc.record) && !stored.has(rc.record) && !docs.has(rc.record));
        if (onQuarantined)
          return { reason: "dependency", message: `record ${rc.record} depends on a quarantined commit` };
        return "wait";
      }
      const problem = docProblem(st);
      if (problem) return problem;
      tentative.set(rc.record, st);
    }
    for (const [id, st] of tentative) docs.set(id, st);
    return "ok";
  };
  for (let progress = true; progress;) {
    progress = false;
    for (const q of queues.values()) {
      while (q.length > 0) {
        const c = q[0]!;
        const outcome = attempt(c);
        if (outcome === "wait") break;
        q.shift();
        progress = true;
        if (outcome === "ok") {
          commits.push(c);
          continue;
        }
        // Refused: quarantined in its slot. What depends on it is found by its records and checksums.
        const p = poisoned(c, outcome.reason, outcome.message);
        quarantined.push(p);
        for (const x of p.meta.checksums) known.checksums.add(x);
        for (const x of p.meta.creations) known.creations.add(x);
      }
    }
  }
  for (const q of queues.values()) waiting.push(...q);
  return { docs, commits, quarantined };
}
