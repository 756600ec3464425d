import * as A from "@automerge/automerge";
import type { Commit } from "./commit.ts";
import { checkContent, reservedRootKey, textUnitsOf } from "./content-check.ts";
import { changeOpCount } from "./change-ops.ts";
import { escrowProblem } from "./escrow-check.ts";
import { ESCROW_KEY } from "./escrow.ts";
import { buildFromCreation, type Creation } from "./creation.ts";
import { sameHeads } from "./heads.ts";
import { isPoisoned, poisoned, type Poisoned } from "./quarantine.ts";
import { isCreationOnly, type Replica } from "./replica.ts";
import type { Slices } from "./slices.ts";
import type { DocRow } from "./stored-rows.ts";

/** What is known to be quarantined: commits depending on it can never apply. */
export interface Quarantined {
  checksums: Set<string>;
  creations: Set<string>;
}

/** A record's state while a chunk is applied. */
export interface DocState {
  /** Null while the record is only its creation (`create`), or not yet anything. */
  doc: A.Doc<unknown> | null;
  create?: Creation;
  collection: string;
  space: Commit["space"];
  /** Values in `doc` (objects, arrays, scalars), counted when it was checked: sizes later work on it. */
  values?: number;
}

/** What applying a chunk's ready commits gave: the records' new states, applied and refused commits. */
export interface AutomergeOutcome {
  docs: Map<string, DocState>;
  commits: Commit[];
  quarantined: Poisoned[];
}

/**
 * Text (UTF-16 units) above which a document counts as heavy: Automerge 3.5 spends time proportional
 * to the length of a text on every `applyChanges` call that touches it, whatever the number of
 * operations (measured: about 55 ms per call at 100,000 characters, 190 ms at 400,000, against 1-5 ms
 * for the operations of a maximal change of appends). Past this length one call costs about a slice
 * (`SLICE_MS`) on its own, and a run of one change per call would multiply the total work (a pasted
 * 400,000-character note: 800 calls instead of 25).
 */
export const HEAVY_TEXT_UNITS = 65_536;
/**
 * Most maximal changes in one call to a heavy document. Runs on a heavy document start at one
 * maximal change and double while a run costs at most 1.5 times the first (the operations are cheap
 * next to the per-call cost of the text); a run costing more than twice the first starts over at one,
 * so expensive operations (scattered edits in the long text) go back to one change per call.
 */
export const HEAVY_RUN_CHANGES = 32;

/**
 * A record's changes cut into runs of at most `budget()` operations (counted from each change's
 * header; each change was checked to hold at most `MAX_OPS_PER_CHANGE`), asked before each run, so
 * that one `applyChanges` call holds the page about as long as one maximal change does.
 */
export function* changeRuns(
  changes: readonly Uint8Array[],
  budget: () => number,
): Generator<{ changes: Uint8Array[]; ops: number }> {
  let i = 0;
  while (i < changes.length) {
    const max = budget();
    const run: Uint8Array[] = [];
    let ops = 0;
    while (i < changes.length) {
      const n = changeOpCount(changes[i]!) ?? max;
      if (run.length > 0 && ops + n > max) break;
      run.push(changes[i++]!);
      ops += n;
    }
    yield { changes: run, ops };
  }
}

/**
 * Why a record's document, once changed, may not be stored: a reserved root key or a content limit.
 * Records the document's number of values in `st.values` on the way.
 */
function docProblem(replica: Replica, st: DocState): { reason: string; message: string } | null {
  if (st.doc === null) return null;
  // Collections with bounded counters keep their escrow under `$escrow` (checked by escrowProblem).
  const escrow = replica.specs.get(st.collection)?.bounded ? ESCROW_KEY : undefined;
  const reserved = reservedRootKey(st.doc as object, true, escrow);
  if (reserved !== null) return { reason: "reserved", message: `it sets the reserved field "${reserved}"` };
  const count = { values: 0, textUnits: 0 };
  const why = checkContent(st.doc, undefined, undefined, count);
  st.values = count.values;
  return why ? { reason: "limits", message: `the record would hold ${why}` } : null;
}

/**
 * Applies the ready commits' changes. A record created by a commit stays as its creation (no Automerge
 * work) unless later changes in the same chunk edit it. Fast path: per record, the whole chunk's
 * changes in as few `applyChanges` calls as the op budget `sliceOps` allows, each a step of the
 * sliced work (so a commit of many changes, such as a long text written in parts, can yield between
 * them; run it with `runSliced` outside a transaction, or `runNow` inside one). `sliced` says which,
 * for the runs on long texts. If that leaves a change waiting for a dependency (a commit of another
 * device not yet here), fails, or a commit was refused, it goes commit by commit, so exactly the commits that can be
 * applied whole are; a commit that cannot be applied, or that depends on a quarantined one, is
 * quarantined in its slot and its device's later commits go on.
 */
export function* applyAutomerge(
  replica: Replica,
  actor: string,
  ready: Commit[],
  stored: Map<string, DocRow>,
  waiting: Commit[],
  known: Quarantined,
  sliced: boolean,
  sliceOps: number,
): Slices<AutomergeOutcome> {
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
  /** Per heavy record: the time of its first run and the maximal changes of its next run. */
  const paces = new Map<string, { first: number; changes: number }>();
  const built = (id: string, st: DocState): A.Doc<unknown> =>
    st.doc ?? (st.create ? buildFromCreation(id, st.create, actor) : A.init({ actor }));
  /**
   * Applies one record change to a state, returning the new state (the old one stays usable). Building
   * a creation counts as one maximal change (it is at most `MAX_OPS_PER_CHANGE` operations).
   */
  const step = function* (
    id: string,
    st: DocState,
    create: Creation | undefined,
    changes: Uint8Array[],
  ): Slices<DocState> {
    let next: DocState = st;
    if (create) {
      if (st.doc === null && st.create === undefined && !stored.has(id)) next = { ...st, create };
      else {
        yield sliceOps;
        const doc = A.merge(A.clone(built(id, st), { actor }), buildFromCreation(id, create, actor));
        next = { ...st, doc, create: undefined };
      }
    }
    if (changes.length > 0) {
      let doc: A.Doc<unknown>;
      if (next.doc) doc = A.clone(next.doc, { actor });
      else {
        if (next.create) yield sliceOps;
        doc = built(id, next);
      }
      // Each run continues the document the previous one made: one copy per record change, not per run.
      let heavy = false;
      const pace = paces.get(id) ?? { first: 0, changes: 1 };
      paces.set(id, pace);
      const budget = () => {
        heavy = sliced && textUnitsOf(doc) > HEAVY_TEXT_UNITS;
        return heavy ? pace.changes * sliceOps : sliceOps;
      };
      for (const run of changeRuns(changes, budget)) {
        yield run.ops;
        replica.stats.applyChangesCalls++;
        const t0 = performance.now();
        [doc] = A.applyChanges(doc, run.changes);
        if (!heavy) continue;
        const ms = performance.now() - t0;
        if (pace.first === 0) pace.first = ms;
        if (ms <= 1.5 * pace.first) pace.changes = Math.min(HEAVY_RUN_CHANGES, pace.changes * 2);
        else if (ms > 2 * pace.first) pace.changes = 1;
      }
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
      yield 0;
      const st = yield* step(id, docs.get(id)!, g.create, g.changes);
      if (missing(st).length > 0 || docProblem(replica, st)) throw new Error("slow path");
      docs.set(id, st);
    }
    // Escrow writes are checked commit by commit, each against its author and its own causal past,
    // which the document after the whole chunk still holds (escrowProblem reads it at the commit's
    // heads); a refusal goes the careful way, which applies and refuses exactly the commits at fault.
    for (const c of ready) {
      for (const rc of c.changes) {
        const spec = replica.specs.get(rc.collection);
        if (!spec?.bounded) continue;
        yield 0;
        const doc = docs.get(rc.record)?.doc ?? null;
        if (escrowProblem(spec, c.device, rc.op, rc.changes as Uint8Array[], doc, rc.create))
          throw new Error("slow path");
      }
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
  const attempt = function* (c: Commit): Slices<Outcome> {
    if (isPoisoned(c)) return c.poison;
    if (misplaced(c, docs))
      return { reason: "misplaced", message: "it touches a record of another space or collection" };
    const tentative = new Map<string, DocState>();
    for (const rc of c.changes) {
      yield 0;
      const cur = tentative.get(rc.record) ?? docs.get(rc.record) ?? start(rc.record, rc.collection, c.space);
      let st: DocState;
      try {
        st = yield* step(rc.record, cur, rc.create, rc.changes as Uint8Array[]);
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
      const problem =
        docProblem(replica, st) ??
        escrowProblem(
          replica.specs.get(rc.collection),
          c.device,
          rc.op,
          rc.changes as Uint8Array[],
          st.doc,
          rc.create,
        );
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
        const outcome = yield* attempt(c);
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
