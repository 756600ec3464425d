import { DatabaseClosed, QuotaExceeded, ShoalError, ValidationError } from "../errors.ts";
import type { CommitId } from "../types.ts";
import { applyChunk, spacesOf, type ChunkResult } from "./apply-chunk.ts";
import type { Commit } from "./commit.ts";
import { isContentFailure, poisoned, refusalOf } from "./quarantine.ts";
import { asStorageError } from "./quota.ts";
import { CHECK_PER_SLICE, TaskBudget } from "./task-budget.ts";
import type { Replica } from "./replica.ts";
import { hasRouting, validateCommit } from "./validate-commit.ts";
import { isVerifiedMembership } from "../members/verified-ops.ts";
import { absorbMembership } from "../spaces/membership-log.ts";

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

/** Aim per chunk for the synchronous Automerge work, so the page stays responsive. */
const CHUNK_BUDGET_MS = 30;

/**
 * Applies commits received from other replicas. Idempotent and order-insensitive: a commit already held
 * is skipped; one that arrives before its device's previous commit, or before a commit its Automerge
 * changes depend on, waits in `_pending` and is applied once the gap fills. A commit is applied whole
 * in one IndexedDB transaction or not at all.
 *
 * A commit that cannot be applied (malformed, over a content limit, a reserved key, refused by
 * Automerge or by storage, or depending on such a commit) is quarantined alone in its slot
 * (`_quarantine`, `CommitQuarantined` in `rejected`): its device's vector moves past it and nothing
 * else waits. `from` says where the commits came from, for the quarantine's record.
 *
 * Changes are applied per record in one `applyChanges` call for a whole chunk of commits (25x faster
 * than one call per change), outside any transaction with a yield about every 10 ms (`applyChunk`),
 * and chunks are sized to about 30 ms of work with a yield between them.
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
  // Checking a bootstrap's or a bundle's thousands of commits is work too (a commit of 100 records
  // takes ~2 ms): the page gets its turn between slices.
  const budget = new TaskBudget("check", CHECK_PER_SLICE);
  for (const c of commits) {
    await budget.step();
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
    if (c.membership !== undefined) {
      // A membership operation decides who may write: only one verified where it arrived counts.
      if (isVerifiedMembership(c) && c.changes.length === 0 && typeof c.membershipId === "string")
        valid.push(c);
      else
        report.rejected.push({
          id: c.id,
          error: new ValidationError(
            `Commit ${c.id} carries a membership operation that was not opened from its signed, sealed bytes.`,
          ),
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
  /** Spaces where membership commits applied, or arrived and wait (their operations count at once). */
  const touched = new Set<string>(valid.filter((c) => c.membership !== undefined).map((c) => c.space));
  /** Spaces whose membership verdicts wait for more commits (`Replica.membershipRetry`) that got some. */
  const retry = new Set<string>();
  let size = 64; // record changes per chunk, adapted to the time a chunk takes
  let first = true;
  // One chunk per slice: its transactions' synchronous parts are sized to `CHUNK_BUDGET_MS` together.
  const chunks = new TaskBudget("chunk", 1);
  while (first || valid.length > 0) {
    first = false;
    await chunks.step();
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
      // Not `assertOpen`: applying what sync brings is not use that would keep an at-rest lock open.
      if (replica.closed) throw new DatabaseClosed();
      await replica.drain();
      // A space left since the call began (here or in another tab) must not get anything stored again.
      const held = new Set(await replica.dexie.table("_spaces").toCollection().primaryKeys());
      for (const c of chunk.filter((c) => !held.has(c.space))) {
        report.rejected.push({
          id: c.id,
          error: new ValidationError(`Commit ${c.id} is for a space this device left.`),
        });
        chunk.splice(chunk.indexOf(c), 1);
      }
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
      // From what applied, not from the input: a membership commit parked earlier (its causal past
      // was missing) applies with a later batch that does not carry it (convergence fuzzer, seed 3).
      for (const c of r.applied) {
        if (c.membership !== undefined) touched.add(c.space);
        else if (replica.membershipRetry.has(c.space)) retry.add(c.space);
      }
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
  }
  // New membership operations may bring keys (a rotation, this device's invitation) and change what
  // this device may write, and what counts here: a removal whose cut lies below commits applied
  // already takes them out (`onMembership`).
  for (const space of touched) {
    await absorbMembership(replica, space as Commit["space"]);
    await replica.onMembership?.(space as Commit["space"]);
  }
  for (const space of retry)
    if (!touched.has(space)) await replica.onMembership?.(space as Commit["space"]);
  return report;
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
