// How the fuzz driver decides that healed replicas converged, and what it then compares: split from
// fuzz-driver.ts, which runs the scenarios.
import type { Database } from "../../src/index.ts";
import { listConflicts } from "../../src/replica/list-conflicts.ts";
import type { Observable } from "../../src/live/observable.ts";
import type { SyncStatus, TransportStatus } from "../../src/status/sync-status.ts";
import type { SpaceId, VersionVector } from "../../src/types.ts";
import type { inProcessRelay } from "../../../sync-server/src/testing/in-process-relay.ts";

export type Patient = {
  name: string;
  ward: string;
  notes: string;
  visits: number;
  kind: "patient" | "account";
  balance: number;
  /** When the record was last seen (ms): the retention rule's date. Only retention steps set it. */
  seen?: number;
};
export type Db = Database<{ patients: Patient }>;

/** One replica of a scenario. */
export interface Replica {
  name: string;
  db: Db;
  stop: () => void;
  clockOffset: number;
}

/** The sum the two accounts always hold (transfers move amounts between them). */
export const TOTAL = 200;

/** A replica that diverged or broke an invariant: the message says how, the seed replays it. */
export class Divergence extends Error {}

/** How many devices each space of a vector names (for a failure message). */
function vectorSize(v: VersionVector): Record<string, number> {
  return Object.fromEntries(
    Object.entries(v).map(([space, devices]) => [space, Object.keys(devices).length]),
  );
}

/** The (space.device: first, other) entries where two vectors differ (for a failure message). */
function vectorDiff(a: VersionVector, b: VersionVector): Record<string, [number?, number?]> {
  const out: Record<string, [number?, number?]> = {};
  for (const space of new Set([...Object.keys(a), ...Object.keys(b)]))
    for (const device of new Set([...Object.keys(a[space] ?? {}), ...Object.keys(b[space] ?? {})])) {
      const x = a[space]?.[device];
      const y = b[space]?.[device];
      if (x !== y) out[`${space.slice(0, 6)}.${device.slice(0, 8)}`] = [x, y];
    }
  return out;
}

/**
 * Waits (bounded) until every replica is synced with nothing pending and all vectors agree. The network
 * has just come back, so each replica reconnects once at once (as the engine does on the browser's
 * `online` event) instead of waiting out its backoff.
 */
/**
 * Which replicas must converge (membership mode: asked at every check). `stranded`: replicas holding
 * own commits the membership refuses (written before they learned they were demoted to reader); those
 * stay pending there forever and nowhere else, so their pending count and their own vector entry are
 * left out. `gapped`: members left out entirely (`keyGapsIn`).
 */
export interface Selection {
  live: Replica[];
  stranded: ReadonlySet<Replica>;
  gapped: ReadonlySet<Replica>;
}

/** How often `settle` checks again without an event. */
const POLL_MS = 500;

export async function settle(
  pool: Replica[],
  space: SpaceId,
  ms: number,
  relayHolds?: {
    vector: () => Promise<ReadonlyMap<string, number>>;
    ghosts: () => Promise<ReadonlySet<string>>;
  },
  select: () => Promise<Selection> = async () => ({ live: pool, stranded: new Set(), gapped: new Set() }),
  /**
   * When the network healed: every connection must have pulled since. A second settle passes the
   * first one's: its replicas are connected and idle, and a reconnect of an open session pulls nothing
   * new (soak seed 20004).
   */
  since = Date.now(),
  triggers: readonly Observable<unknown>[] = [],
): Promise<Selection> {
  for (const r of pool) r.db.reconnect();
  let selection: Selection = { live: pool, stranded: new Set(), gapped: new Set() };
  // For a failure message: the devices of which the relay holds more than the first replica.
  const relayAhead = async (mine: Record<string, number>) => {
    const ahead = [...((await relayHolds?.vector()) ?? new Map<string, number>())].filter(
      ([device, seq]) => (mine[device] ?? 0) < seq,
    );
    return ahead.length === 0
      ? ""
      : `\nthe relay holds more of ${ahead.map(([d, seq]) => `${d.slice(0, 8)} (${seq}, first replica ${mine[d] ?? 0})`).join(", ")}`;
  };
  const check = async () => {
    selection = await select();
    const { live: replicas, stranded } = selection;
    const statuses = replicas.map((r) => r.db.status.get());
    const vectors = await Promise.all(replicas.map((r) => r.db.vector([space])));
    // What the others hold of a stranded replica's device: they must agree on it, and hold all the
    // relay does (its membership commits, an erase receipt, still travel: soak seed 100213 checked the
    // logs while three receipts of a stranded reader were on their way to the creator).
    const strandedDevices = new Set([...stranded].map((r) => r.db.deviceId as string));
    const othersHold = vectors
      .filter((_, i) => !stranded.has(replicas[i]!))
      .map((v) => JSON.stringify([...strandedDevices].map((d) => v[space]?.[d] ?? 0)));
    const othersAgree = othersHold.every((x) => x === othersHold[0]);
    const firstHolds = { ...(vectors[0]?.[space] ?? {}) };
    for (const r of stranded) for (const v of vectors) delete v[space]?.[r.db.deviceId];
    const same =
      othersAgree && vectors.every((v) => JSON.stringify(sortKeys(v)) === JSON.stringify(sortKeys(vectors[0]!)));
    // A status still "synced" from before the last uploads, with equal vectors, is not convergence:
    // every replica must also hold what the relay acknowledged (a reconnect may not have pulled yet).
    let holds = true;
    const ghosts = (await relayHolds?.ghosts()) ?? new Set<string>();
    if (relayHolds) {
      // Replica 0 (the creator) is never stranded: it must hold all the relay does, of every device.
      for (const [device, seq] of await relayHolds.vector())
        if (!ghosts.has(device) && (firstHolds[device] ?? 0) < seq) holds = false;
    }
    // A ghost's commit opens nowhere: the truth is `syncing` with it missing as bad at its source, once
    // every connection pulled since the network healed.
    // Every connection must have pulled since: a status still `synced` from before the reconnect let
    // the hostile member leave before its last pull showed its own head damaged (soak seed 10458).
    const settled = (s: SyncStatus, i: number) =>
      (s.pendingCommits === 0 || stranded.has(replicas[i]!)) &&
      !s.stuck?.length &&
      s.transports.every((t) => t.state === "connected" && (t.lastSyncedAt ?? 0) >= since) &&
      (s.state === "synced" ||
        (s.state === "syncing" &&
          (s.missing?.length ?? 0) > 0 &&
          s.missing!.every((m) => m.reason === "bad-at-source" && ghosts.has(m.device))));
    // A member still without some epoch's key is not there yet either: a share is on its way to it.
    const complete = selection.gapped.size === 0;
    return { ok: same && holds && complete && statuses.every(settled), statuses, vectors, replicas };
  };
  await new Promise<void>((resolve, reject) => {
    // (`replicas` in the messages below: the last selection's.)
    let busy = false;
    let again = false;
    const subs: { unsubscribe(): void }[] = [];
    let done = false;
    const finish = (e?: Error) => {
      done = true;
      clearTimeout(timer);
      subs.forEach((s) => s.unsubscribe());
      if (e) reject(e);
      else resolve();
    };
    const timer = setTimeout(async () => {
      clearInterval(poll);
      const { ok, statuses, vectors, replicas } = await check();
      // Converged, but no event woke a check since (soak seeds 60103, 50067): not a divergence.
      if (ok) return finish();
      finish(
        new Divergence(
          `replicas did not converge within ${ms / 1000} s:\n${replicas
            .map(
              (r, i) =>
                // Capped, and only the vector entries that differ from the first replica's: a hostile
                // run's vector can name thousands of devices.
                `${r.name} ${JSON.stringify({ state: statuses[i]!.state, pending: statuses[i]!.pendingCommits, missing: statuses[i]!.missing, stuck: statuses[i]!.stuck, lastError: statuses[i]!.lastError?.message.slice(0, 200), transports: statuses[i]!.transports.map((t) => `${t.space === space ? "shared" : "own"} ${t.detail ?? t.state}${(t.lastSyncedAt ?? 0) >= since ? " pulled" : t.lastSyncedAt ? " pulled-before-heal" : " never-pulled"}`), vector: i === 0 ? vectorSize(vectors[0]!) : vectorDiff(vectors[0]!, vectors[i]!) }).slice(0, 1200)}`,
            )
            .join(
              "\n",
            )}${selection.gapped.size > 0 ? `\nwithout some epoch's key: ${[...selection.gapped].map((r) => r.name).join(", ")}` : ""}${await relayAhead(vectors[0]?.[space] ?? {})}${await ownCommitsOf(
            replicas.filter((_, i) => statuses[i]!.pendingCommits > 0),
            space,
          )}`,
        ),
      );
    }, ms);
    // Once finished (converged or timed out) a check still running must not touch the replicas, which
    // the scenario is about to close.
    const onChange = async () => {
      if (done) return;
      if (busy) return void (again = true);
      busy = true;
      try {
        do {
          again = false;
          if ((await check()).ok) return finish();
        } while (again && !done);
      } catch (e) {
        if (!done) finish(e as Error);
      } finally {
        busy = false;
      }
    };
    for (const r of pool) subs.push(r.db.status.subscribe(() => void onChange()));
    // What decides convergence is read from the replicas' stores and the relay, and not every change
    // of it comes with an event (the relay's vector, the selection): look again now and then too.
    const poll = setInterval(() => void onChange(), POLL_MS);
    subs.push({ unsubscribe: () => clearInterval(poll) });
    // Membership mode: who must converge changes with the replicas' logs and keys too, which a status
    // need not report (soak seed 20006 timed out with the last two agreeing).
    for (const t of triggers) subs.push(t.subscribe({ next: () => void onChange() }));
  });
  return selection;
}

/**
 * For a failure message: where each replica with commits pending holds its own commits of `space`
 * (log, sealed bytes, quarantine), against what it holds and what the relay acknowledged (seed 50054:
 * own commits pending that it held in neither).
 */
async function ownCommitsOf(replicas: readonly Replica[], space: SpaceId): Promise<string> {
  const lines = await Promise.all(
    replicas.map(async (r) => {
      const dexie = r.db.replica.dexie;
      const me = r.db.deviceId;
      const range = (table: string) =>
        dexie
          .table<{ seq: number; membership?: string }>(table)
          .where("[space+device+seq]")
          .between([space, me, 0], [space, me, Number.MAX_SAFE_INTEGER], true, true)
          .toArray();
      const [held, acked, commits, sealed, quarantined] = await Promise.all([
        dexie.table<{ seq: number }>("_vectors").get([space, me]),
        dexie.table<{ seq: number }>("_acks").get([space, me]),
        range("_commits"),
        range("_sealed"),
        range("_quarantine"),
      ]);
      return `${r.name} own commits: held ${held?.seq ?? 0}, acked ${acked?.seq ?? 0}, in the log ${commits.map((c) => `${c.seq}${c.membership ? "m" : ""}`).join(",")}, sealed ${sealed.map((c) => c.seq).join(",")}, quarantined ${quarantined.map((c) => c.seq).join(",")}`;
    }),
  );
  return lines.length > 0 ? `\n${lines.join("\n")}` : "";
}

/** For a failure message: which commit ids one replica holds and the other does not (soak seed 100091). */
function commitsDiff(a: readonly string[], b: readonly string[], nameA: string, nameB: string): string {
  const inA = new Set(a);
  const inB = new Set(b);
  const only = (xs: readonly string[], other: Set<string>) => xs.filter((x) => !other.has(x)).slice(0, 20).join(", ");
  return `: only ${nameA} holds [${only(a, inB)}], only ${nameB} holds [${only(b, inA)}]`;
}

function sortKeys(v: unknown): unknown {
  if (v === null || typeof v !== "object" || Array.isArray(v)) return v;
  return Object.fromEntries(
    Object.entries(v)
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([k, x]) => [k, sortKeys(x)]),
  );
}

export async function compare(
  replicas: Replica[],
  space: SpaceId,
  relayVector: () => Promise<ReadonlyMap<string, number>>,
  skipDevices: ReadonlySet<string | undefined>,
): Promise<void> {
  // Membership mode can leave no member to compare: every one hit by a known open bug (soak seeds
  // 40111, 40137), which the report counts.
  if (replicas.length === 0) return;
  const states = await Promise.all(
    replicas.map(async (r) => {
      const dexie = r.db.replica.dexie;
      const rows = await r.db.patients.orderBy("id").toArray();
      const heads = (await dexie.table("_docs").toArray())
        .filter((d: { space: string }) => d.space === space)
        .map((d: { id: string; heads: string[] }) => `${d.id}:${[...d.heads].sort().join(",")}`)
        .sort();
      const commits = (await r.db.exportCommits({}, { spaces: [space] })).map((c) => c.id).sort();
      const histories: Record<string, string[]> = {};
      for (const row of rows)
        histories[row.id] = (await r.db.patients.history(row.id)).map((h) => h.commit).sort();
      // Every replica lists the same conflicts (values, authors, order) and so the same resolutions.
      const conflicts = await listConflicts(r.db.replica);
      return { rows, heads, vector: sortKeys(await r.db.vector([space])), commits, histories, conflicts };
    }),
  );
  const base = states[0]!;
  for (const [i, s] of states.entries()) {
    for (const key of ["rows", "heads", "vector", "commits", "histories", "conflicts"] as const) {
      if (JSON.stringify(s[key]) !== JSON.stringify(base[key])) {
        throw new Divergence(
          `${replicas[i]!.name} differs from ${replicas[0]!.name} in ${key}${key === "commits" ? commitsDiff(base.commits, s.commits, replicas[0]!.name, replicas[i]!.name) : ""}`,
        );
      }
    }
  }
  for (const [device, seq] of await relayVector()) {
    if (skipDevices.has(device)) continue;
    const have = (base.vector as Record<string, Record<string, number>>)[space]?.[device] ?? 0;
    if (have < seq)
      throw new Divergence(`the relay acknowledged ${device} up to ${seq}, replicas hold ${have}`);
  }
  const [a, b] = base.rows.filter((r) => r.kind === "account");
  if (a && b && a.balance + b.balance !== TOTAL)
    throw new Divergence(`final balances sum to ${a.balance + b.balance}`);
}

/**
 * Devices the relay holds commits of that no replica of the scenario is and no hostile input named: a
 * commit whose device id a bit flip changed on its way up (a first commit, so the relay took it as a
 * new device's). Nobody holds its key material under that id, so nobody can open or replace it; every
 * honest replica reports it missing, bad at its source (soak seed 10170).
 */
export async function ghostsAt(
  relay: ReturnType<typeof inProcessRelay>,
  space: SpaceId,
  authors: ReadonlySet<string>,
  injected: readonly { device?: string; devices?: readonly string[] }[],
): Promise<Set<string>> {
  const known = new Set([...authors, ...injected.flatMap((i) => [i.device ?? "", ...(i.devices ?? [])])]);
  return new Set([...(await relay.store.vector(space)).keys()].filter((d) => !known.has(d)));
}

/**
 * Reconnects each replica and waits (bounded, 5 s) for the attempt to end: a status that left
 * `connecting` again (refused, synced, offline), or every transport seen trying again since the knock
 * and now connected or refused with a reason. The second is what a refused replica shows: its state
 * stays `refused` through its retries (it wins over every other), so the first never came and each
 * knock of a removed device waited out the whole 5 s.
 */
export function knock(replicas: readonly Replica[]): Promise<void[]> {
  return Promise.all(
    replicas.map(
      (r) =>
        new Promise<void>((resolve) => {
          let seen = false;
          let knocked = false;
          const tried = new Set<string>();
          const done = () => {
            clearTimeout(timer);
            queueMicrotask(() => sub.unsubscribe());
            resolve();
          };
          const timer = setTimeout(done, 5_000);
          const sub = r.db.status.subscribe((s) => {
            if (s.state === "connecting" || s.state === "syncing") seen = true;
            else if (seen) return done();
            if (!knocked) return;
            for (const t of s.transports) if (trying(t)) tried.add(transportKey(t));
            const ended = (t: TransportStatus) =>
              t.state === "connected" || (t.state === "refused" && t.detail !== undefined);
            if (s.transports.every((t) => tried.has(transportKey(t)) && ended(t))) done();
          });
          knocked = true;
          r.db.reconnect();
        }),
    ),
  );
}

/**
 * A transport in an attempt: dropped for the knock, connecting, or refused without a reason (a retry of
 * a refused session shows `refused` until the relay answers it, which then gives the reason again).
 */
function trying(t: TransportStatus): boolean {
  return (
    t.state === "offline" || t.state === "connecting" || (t.state === "refused" && t.detail === undefined)
  );
}

function transportKey(t: TransportStatus): string {
  return `${t.kind} ${t.label} ${t.space}`;
}
