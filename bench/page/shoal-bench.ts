// Shoal's side of the bench, run in the page: each function is one measured step, called by
// scripts/bench.mjs through `page.evaluate`. State (the open database, record ids) lives in `state`
// until the page reloads.
import {
  openDatabase,
  type CommitId,
  type Database,
  type SpaceId,
  type Subscription,
  type SyncStatus,
} from "@shoal/client";
import { frameLog, resetTraffic, traffic } from "./counting-socket.ts";
import { watchResponsiveness, type Responsiveness } from "./responsiveness.ts";
import { PATIENT_INDEXES, QUERY_WARD, patients, percentile, tick, type PatientRecord } from "./data.ts";

type Db = Database<{ patients: PatientRecord }>;

const DB_NAME = "shoal-bench";

const state: {
  db?: Db;
  space?: SpaceId;
  ids: string[];
  stopSync?: () => void;
} = { ids: [] };

function db(): Db {
  if (!state.db) throw new Error("shoal: database not open");
  return state.db;
}

/** Opens (or reopens after a reload) the bench database; creates the shared space on first open. */
export async function shoalOpen(): Promise<{ ms: number; records: number }> {
  const t0 = performance.now();
  state.db = await openDatabase<{ patients: PatientRecord }>({
    name: DB_NAME,
    collections: { patients: { indexes: PATIENT_INDEXES, text: ["notes"] } },
  });
  const ms = performance.now() - t0;
  const spaces = await db().spaces();
  state.space = spaces.find((s) => !s.private)?.id;
  state.ids = (await db().patients.all().ids()) as string[];
  return { ms, records: state.ids.length };
}

export async function shoalCreateSpace(): Promise<void> {
  state.space = (await db().createSpace({ name: "North Clinic" })).id;
}

/** Local insert of n records in commits (transactions) of `batch`. */
export async function shoalInsert(args: { n: number; seed: number; batch: number }): Promise<{ ms: number }> {
  const space = state.space!;
  const ids: string[] = [];
  let total = 0;
  for (let from = 0; from < args.n; from += args.batch) {
    const rows = patients(args.seed, from, Math.min(args.n, from + args.batch));
    const t0 = performance.now();
    await db().transact(async (tx) => {
      for (const row of rows) ids.push(await tx.patients.insert(row, { space }));
    });
    total += performance.now() - t0;
  }
  state.ids = ids;
  return { ms: total };
}

/** The commit id of this device's newest commit in the bench space. */
async function lastOwnCommit(): Promise<CommitId> {
  const v = await db().vector([state.space!]);
  const seq = v[state.space!]?.[db().deviceId] ?? 0;
  return `${state.space}.${db().deviceId}.${seq}` as CommitId;
}

/**
 * Resolves once `done()` holds, checked every `everyMs` and on each status change `wake` accepts (an
 * event, not only a timer); rejects after `timeoutMs` with the sync status in the message.
 */
function until(
  done: () => Promise<boolean>,
  opts: { timeoutMs: number; everyMs: number; wake: (s: SyncStatus) => boolean; what: string },
): Promise<void> {
  const deadline = performance.now() + opts.timeoutMs;
  return new Promise<void>((resolve, reject) => {
    let finished = false;
    let checking = false;
    let sub: Subscription | undefined;
    const finish = (error?: Error) => {
      if (finished) return;
      finished = true;
      clearInterval(poll);
      sub?.unsubscribe();
      if (error) reject(error);
      else resolve();
    };
    const check = async () => {
      if (checking || finished) return;
      checking = true;
      try {
        if (await done()) finish();
        else if (performance.now() > deadline)
          finish(new Error(`${opts.what} timeout; status ${JSON.stringify(db().status.get())}`));
      } catch (e) {
        finish(e as Error);
      } finally {
        checking = false;
      }
    };
    const poll = setInterval(() => void check(), opts.everyMs);
    sub = db().status.subscribe((s) => {
      if (opts.wake(s)) void check();
    });
    if (finished) sub.unsubscribe();
  });
}

/** Resolves once the relay acknowledged every commit this device made (`pendingCommits` 0, last commit on the relay). */
async function untilUploaded(timeoutMs: number): Promise<void> {
  const last = await lastOwnCommit();
  await until(async () => db().status.get().pendingCommits === 0 && (await db().durability(last)).relay, {
    timeoutMs,
    everyMs: 200,
    wake: (s) => s.pendingCommits === 0,
    what: "upload",
  });
}

/** Starts syncing with the relay and times the upload of everything not yet on it. */
export async function shoalUpload(args: {
  relay: string;
  timeoutMs: number;
}): Promise<{ ms: number; sent: number; received: number }> {
  resetTraffic();
  const t0 = performance.now();
  state.stopSync = db().sync({ relay: args.relay });
  await untilUploaded(args.timeoutMs);
  return { ms: performance.now() - t0, sent: traffic.sent, received: traffic.received };
}

/** The frames of the last measured step (`bench:profile --step upload` prints where its time went). */
export function shoalFrameLog(): [number, number, "s" | "r"][] {
  return frameLog.slice();
}

export function shoalStartSync(args: { relay: string }): void {
  state.stopSync?.();
  state.stopSync = db().sync({ relay: args.relay });
}

export function shoalStopSync(): void {
  state.stopSync?.();
  state.stopSync = undefined;
}

export async function shoalWaitUploaded(args: { timeoutMs: number }): Promise<void> {
  await untilUploaded(args.timeoutMs);
}

/** Single-record update latency: `count` updates, each awaited (saved durably on this device). */
export async function shoalUpdates(args: {
  count: number;
  seed: number;
}): Promise<{ p50: number; p99: number; samples: number[] }> {
  const samples: number[] = [];
  const pick = (k: number) => state.ids[(k * 7919 + args.seed) % state.ids.length]!;
  for (let k = 0; k < args.count; k++) {
    const id = pick(k);
    const t0 = performance.now();
    await db().patients.update(id, (d) => {
      d.phone = `+44 20 7000 ${String(k).padStart(4, "0")}`;
    });
    samples.push(performance.now() - t0);
  }
  return { p50: percentile(samples, 50), p99: percentile(samples, 99), samples };
}

/** Indexed equality query (about 10% of the rows); `repeat` runs, all timed. */
export async function shoalQuery(args: { repeat: number }): Promise<{ ms: number[]; rows: number }> {
  const ms: number[] = [];
  let rows = 0;
  for (let k = 0; k < args.repeat; k++) {
    const t0 = performance.now();
    const result = await db().patients.where("ward").equals(QUERY_WARD).toArray();
    ms.push(performance.now() - t0);
    rows = result.length;
  }
  return { ms, rows };
}

/**
 * Live query latency: a subscriber on the query `ward = W3`; each sample is the time from calling
 * `update` on a W3 record to the subscriber's next emission.
 */
export async function shoalLive(args: {
  count: number;
}): Promise<{ p50: number; p99: number; samples: number[] }> {
  const targets = (await db().patients.where("ward").equals(QUERY_WARD).ids()) as string[];
  let waiter: ((rows: unknown[]) => void) | null = null;
  let first: (() => void) | null = null;
  const firstEmission = new Promise<void>((r) => (first = r));
  const sub = db()
    .patients.live((c) => c.where("ward").equals(QUERY_WARD))
    .subscribe((rows) => {
      first?.();
      first = null;
      const w = waiter;
      waiter = null;
      w?.(rows);
    });
  await firstEmission;
  const samples: number[] = [];
  try {
    for (let k = 0; k < args.count; k++) {
      await tick(20); // let any emission of the previous round settle
      const id = targets[(k * 31) % targets.length]!;
      const marker = `live-${k}`;
      const emitted = new Promise<unknown[]>((r) => (waiter = r));
      const t0 = performance.now();
      const saved = db().patients.update(id, (d) => {
        d.status = marker;
      });
      await emitted;
      samples.push(performance.now() - t0);
      await saved;
    }
  } finally {
    sub.unsubscribe();
  }
  return { p50: percentile(samples, 50), p99: percentile(samples, 99), samples };
}

/** This replica's version vector for the bench space. */
export async function shoalVector(): Promise<Record<string, number>> {
  return (await db().vector([state.space!]))[state.space!] ?? {};
}

/** Waits until this replica holds at least `vector` (every commit another device had made by then). */
export async function shoalWaitVector(args: {
  vector: Record<string, number>;
  timeoutMs: number;
}): Promise<{ ms: number }> {
  const t0 = performance.now();
  for (;;) {
    const mine = await shoalVector();
    if (Object.entries(args.vector).every(([d, seq]) => (mine[d] ?? 0) >= seq))
      return { ms: performance.now() - t0 };
    if (performance.now() - t0 > args.timeoutMs)
      throw new Error(`vector wait timeout: ${JSON.stringify(mine)} vs ${JSON.stringify(args.vector)}`);
    await tick(50);
  }
}

/** Publishes a snapshot of the bench space now (sync running): a device joining after bootstraps from it. */
export async function shoalPublishSnapshot(): Promise<boolean> {
  return db().publishSnapshot(state.space!);
}

export async function shoalInvite(): Promise<string> {
  return db().invite(state.space!);
}

/**
 * Fresh device: join the space, sync, and time until every record is queryable (count === n, read
 * from IndexedDB). The count is checked when `db.status` reports a finished pull ("synced": this
 * replica holds everything the relay had) and every 250 ms, rather than by a live query, which would
 * re-count the whole table after every applied chunk and slow the bootstrap it measures.
 */
export async function shoalBootstrap(args: {
  relay: string;
  link: string;
  n: number;
  timeoutMs: number;
}): Promise<{ ms: number; received: number; sent: number; responsiveness: Responsiveness }> {
  state.space = (await db().join(args.link)).id;
  resetTraffic();
  // scripts/bench.mjs types into the search box meanwhile: each key runs a name query, as in the demo.
  const stop = watchResponsiveness(
    async (text) => (await db().patients.where("name").startsWithIgnoreCase(text).limit(50).toArray()).length,
  );
  const t0 = performance.now();
  state.stopSync = db().sync({ relay: args.relay });
  try {
    await until(async () => (await db().patients.count()) >= args.n, {
      timeoutMs: args.timeoutMs,
      everyMs: 250,
      wake: (s) => s.state === "synced",
      what: "bootstrap",
    });
  } catch (e) {
    stop();
    throw e;
  }
  const ms = performance.now() - t0;
  const responsiveness = stop();
  state.ids = (await db().patients.all().ids()) as string[];
  return { ms, received: traffic.received, sent: traffic.sent, responsiveness };
}

/** The device that writes during the other's offline period: `count` commits of one update each, then upload. */
export async function shoalOfflineEdits(args: {
  count: number;
  timeoutMs: number;
}): Promise<{ sent: number; ids: string[]; markers: string[] }> {
  const ids: string[] = [];
  const markers: string[] = [];
  for (let k = 0; k < args.count; k++) {
    const id = state.ids[(k * 104729 + 17) % state.ids.length]!;
    const marker = `catch-up-${k}-${Date.now()}`;
    ids.push(id);
    markers.push(marker);
  }
  await untilUploaded(args.timeoutMs);
  resetTraffic();
  for (let k = 0; k < args.count; k++) {
    await db().patients.update(ids[k]!, (d) => {
      d.status = markers[k]!;
    });
  }
  await untilUploaded(args.timeoutMs);
  return { sent: traffic.sent, ids, markers };
}

/** The device back from its offline period: reconnect and time until it holds the edits. */
export async function shoalCatchUp(args: {
  relay: string;
  ids: string[];
  markers: string[];
  timeoutMs: number;
}): Promise<{ ms: number; received: number; sent: number }> {
  resetTraffic();
  const t0 = performance.now();
  state.stopSync = db().sync({ relay: args.relay });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      sub.unsubscribe();
      reject(new Error("catch-up timeout"));
    }, args.timeoutMs);
    const sub = db()
      .live(() => Promise.all(args.ids.map((id) => db().patients.get(id))))
      .subscribe((rows) => {
        if (rows.every((r, k) => r?.status === args.markers[k])) {
          clearTimeout(timer);
          queueMicrotask(() => sub.unsubscribe());
          resolve();
        }
      });
  });
  return { ms: performance.now() - t0, received: traffic.received, sent: traffic.sent };
}

export async function shoalClose(): Promise<void> {
  state.stopSync?.();
  await state.db?.close();
  state.db = undefined;
}
