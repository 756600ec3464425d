import { asCounter, openDatabase } from "../../src/index.ts";
import { listConflicts } from "../../src/replica/list-conflicts.ts";
import { SimulatedNetwork } from "../../src/testing/simulated-network.ts";
import { seededRandom } from "../../src/testing/seeded-random.ts";
import type { RecordId, SpaceId } from "../../src/types.ts";
import { inProcessRelay } from "../../../sync-server/src/testing/in-process-relay.ts";
import type { InjectedAt } from "./hostile-invariant.ts";
import type { HostileOptions } from "./hostile-member.ts";
import { HostileScenario } from "./hostile-scenario.ts";
import {
  canaryNotes,
  canaryOf,
  keyGapFailures,
  keyGapsIn,
  membersIn,
  membershipFailures,
  strandedIn,
  type Canary,
} from "./membership-invariant.ts";
import { MembershipScenario, type MemberReplica, type MembershipStats } from "./membership-scenario.ts";
import { feedFailures } from "./feed-invariant.ts";
import { EraseScenario, FUZZ_RETENTION, type EraseStats } from "./erase-scenario.ts";
import { EscrowScenario, STOCK_COLLECTION, type EscrowStats } from "./escrow-scenario.ts";
import { ensureMembership } from "../../src/spaces/manage-members.ts";
import { readMembership } from "../../src/spaces/membership-log.ts";
import {
  compare,
  Divergence,
  ghostsAt,
  knock,
  settle,
  TOTAL,
  type Db,
  type Patient,
  type Replica,
  type Selection,
} from "./fuzz-settle.ts";

export { Divergence } from "./fuzz-settle.ts";

const collections = {
  patients: {
    indexes: "id, name, ward, kind, seen",
    text: ["notes"],
    counters: ["visits", "balance"],
    // Concurrent ward changes are listed as conflicts, and resolved by later ward changes (step 3).
    conflicts: { ward: "inbox" as const },
    // Records with a `seen` date are erased 30 days after it (the erase steps insert and sweep them).
    retention: FUZZ_RETENTION,
  },
  // A bounded counter (plain mode): `escrow-scenario.ts`.
  stock: STOCK_COLLECTION,
};

/** What one scenario did. */
export interface ScenarioReport {
  seed: number;
  replicas: number;
  operations: number;
  restarts: number;
  joins: number;
  partitions: number;
  skewed: boolean;
  network: SimulatedNetwork["stats"];
  invariantChecks: number;
  /** Snapshots the relay stored (late joiners bootstrap from them). */
  snapshots: number;
  /** Conflicted wards (inbox field) a replica resolved. */
  resolutions: number;
  /** Replicas whose change feed was read in two parts across a reload and found exact (`feedFailures`). */
  feedsChecked?: number;
  /** Hostile mode only: what the hostile member injected, and how often the relay served its snapshot. */
  hostile?: {
    injected: InjectedAt[];
    forgedSnapshotsServed: number;
    /** Honest replicas that stored the forged snapshot's forged record (each must report it). */
    forgedSnapshotsImported: number;
    /** Honest replicas that reported the forged snapshot. */
    forgedSnapshotsReported: number;
  };
  /** Membership mode only: what it did, and how the replicas ended (members, removed, never members). */
  members?: MembershipStats & {
    finalMembers: number;
    removedReplicas: number;
    outsiders: number;
    stranded: number;
    /** Members that can never read some epoch (`keyGapsIn`: a known open bug), left out of the checks. */
    keyGaps: number;
  };
  /** Membership mode only: the erase and restore steps (`erase-scenario.ts`). */
  erase?: EraseStats;
  /** Plain mode only: the bounded counter steps (`escrow-scenario.ts`). */
  stock?: EscrowStats;
}

/** Options of one scenario. */
export interface ScenarioOptions {
  /** Operations of the run (default: 10 to 29, by seed). */
  steps?: number;
  /** A deliberate bug, for the test of the harness. */
  inject?: InjectedBug;
  /**
   * Adds a hostile member (`HostileMember`): one more device, holding the space key, that syncs
   * normally and also injects the hostile inputs of issue 12 (items 1-5) at seeded steps. The invariant
   * then covers the honest replicas only, and adds `hostileFailures`. `true` for the defaults.
   */
  hostile?: boolean | HostileOptions;
  /** Probability per frame, both ways, that the simulated network flips one bit (issue 12 item 10). */
  bitFlips?: number;
  /** How long the healed replicas get to converge (default 30 s). */
  settleMs?: number;
  /**
   * Membership mode (issue 13, `membership-scenario.ts`): the space has members; replicas join by
   * member invitations, and seeded steps change roles, remove people and devices, revoke and double-
   * redeem invitations. Records are compared over the replicas that end as members, and the
   * membership invariants (`membership-invariant.ts`) are checked too.
   */
  members?: boolean;
  /**
   * Filled in as the scenario goes: where it is, and (membership mode) what it did. A caller that gives
   * up on a scenario that hangs reads it to say where (`fuzz-cli.ts`'s watchdog).
   */
  progress?: ScenarioProgress;
}

/** Where a running scenario is: see `ScenarioOptions.progress`. */
export interface ScenarioProgress {
  phase: string;
  trail?: readonly string[];
}

/**
 * A deliberately injected bug, for the test of the test harness (`harness.test.ts`): the fuzzer must
 * catch it. `drop-last-change`: every replica's `applyCommits` loses the last record change of the last
 * commit of each batch when that commit changes two records or more (a half-applied commit that is
 * still reported and recorded as applied).
 */
export type InjectedBug = "drop-last-change";

/** Wraps `db.applyCommits` (which the sync engine calls through the database object) with the bug. */
function injectBug(db: Db, bug: InjectedBug): void {
  const real = db.applyCommits.bind(db);
  db.applyCommits = (commits) => {
    const last = commits.at(-1);
    if (bug !== "drop-last-change" || !last || last.changes.length < 2) return real(commits);
    return real([...commits.slice(0, -1), { ...last, changes: last.changes.slice(0, -1) }]);
  };
}

let run = 0;

/**
 * One seeded scenario: 3 to 6 replicas share a space through an in-process relay over a simulated
 * network, do random inserts, field updates, text edits, counter increments, deletes, multi-record
 * transactions and transfers between two accounts (a sum that must hold), while replicas restart,
 * join late and get partitioned, with skewed clocks in some seeds. Then the network heals and every
 * replica must hold the same rows, Automerge heads, vectors, commit ids and histories, and every commit
 * the relay acknowledged. The sum is checked on every replica after every applied batch. Last, each
 * compared replica's change feed, read in two parts across a reload, must list each of its commits once.
 */
export async function runScenario(seed: number, options: ScenarioOptions = {}): Promise<ScenarioReport> {
  const rnd = seededRandom(seed);
  const progress = options.progress ?? { phase: "" };
  const phase = (what: string) => void (progress.phase = what);
  phase("opening r0");
  const prefix = `fuzz-${seed}-${run++}`;
  const relay = inProcessRelay({ limits: { messagesPerSecond: 100_000, messageBurst: 100_000 } });
  const net = new SimulatedNetwork(
    (s, t, e, c, p) => relay.accept(s, t, e as never, c, p),
    seed,
    {
      drop: rnd.pick([0, 0.01, 0.03]),
      duplicate: rnd.pick([0, 0.05, 0.15]),
      maxDelayMs: rnd.pick([0, 1, 3]),
      bitFlip: options.bitFlips ?? 0,
    },
    (space, token, proofs, commits) => relay.appeal(space, token, proofs, commits),
  );
  const hostileOptions = options.hostile === true ? {} : options.hostile || undefined;
  const skewed = rnd.next() < 0.3;
  // Some scenarios publish snapshots often, so late joiners bootstrap from them.
  const publishEvery = rnd.pick([0, 6, 20]);
  const report: ScenarioReport = {
    seed,
    replicas: 0,
    operations: 0,
    restarts: 0,
    resolutions: 0,
    joins: 0,
    partitions: 0,
    skewed,
    network: net.stats,
    invariantChecks: 0,
    snapshots: 0,
  };
  const replicas: Replica[] = [];
  /** Every device id of the scenario's replicas (honest and hostile), for `ghostsAt`. */
  const authors = new Set<string>();
  const failures: string[] = [];
  let space!: SpaceId;
  let invite = "";
  let accounts: [string, string] | null = null;
  const checks: Promise<void>[] = [];
  // Hostile mode: the hostile member's part of the scenario (created once the space exists).
  const HOSTILE = HostileScenario.NAME;
  let hostile: HostileScenario | null = null;
  const honest = () => replicas.filter((r) => r.name !== HOSTILE);
  if (options.members && hostileOptions) throw new Error("membership mode and hostile mode do not combine");
  let membership: MembershipScenario<Replica> | null = null;
  let erasing: EraseScenario | null = null;
  const canaries: Canary[] = [];
  // Plain mode: a bounded counter, with steps and an invariant of its own (a random stream of its own).
  const stock = options.members || hostileOptions ? null : new EscrowScenario(seed, failures);

  // Every honest replica's reported errors go to the hostile scenario, across restarts.
  const watchHostile = (r: Replica) => {
    if (!hostile || r.name === HOSTILE) return;
    const unwatch = hostile.watch(r.name, r.db);
    const stop = r.stop;
    r.stop = () => (unwatch(), stop());
  };

  const watch = (r: Replica) => {
    if (r.name === HOSTILE) return;
    watchHostile(r);
    stock?.watch(r, checks);
    r.db.replica.onCommits((_, origin) => {
      if (origin !== "remote" || !accounts) return;
      const db = r.db;
      checks.push(
        db.replica.dexie
          .transaction("r", db.replica.dexie.table("patients"), async () => {
            const rows = (await db.replica.dexie.table("patients").bulkGet(accounts!)) as (
              Patient | undefined
            )[];
            report.invariantChecks++;
            const present = rows.filter((x) => x !== undefined);
            if (present.length === 1)
              failures.push(`${r.name}: only one account of the atomic pair is visible`);
            if (present.length === 2 && present[0]!.balance + present[1]!.balance !== TOTAL) {
              failures.push(
                `${r.name}: balances sum to ${present[0]!.balance + present[1]!.balance}, not ${TOTAL}`,
              );
            }
          })
          .catch(() => undefined),
      );
    });
  };

  /** Opens a replica; `join` runs before it syncs (membership mode: a redemption). */
  const openDb = async (name: string, clockOffset: number): Promise<Replica> => {
    // Some devices' clocks are hours to a year off, and step backwards during the run.
    let offset = clockOffset;
    const clock = () => {
      if (skewed && rnd.next() < 0.01) offset -= 3_600_000 * (1 + rnd.int(48));
      return Math.max(0, Date.now() + offset);
    };
    const db = await openDatabase<{ patients: Patient }>({
      name: `${prefix}-${name}`,
      collections,
      clock,
      persist: false,
    });
    if (options.inject) injectBug(db, options.inject);
    const r: Replica = { name, db, stop: () => {}, clockOffset };
    authors.add(db.deviceId);
    if (invite) await db.join(invite);
    return r;
  };
  const startSync = (r: Replica): Replica => {
    r.stop = r.db.sync({
      transports: [net.transport(r.name)],
      backoff: { baseMs: 2, maxMs: 50 },
      snapshots: { publishEvery },
    });
    watch(r);
    return r;
  };
  const open = async (name: string, clockOffset: number) => startSync(await openDb(name, clockOffset));
  const skew = () => (skewed ? rnd.pick([-1, 1]) * rnd.int(365 * 24) * 3_600_000 : 0);

  try {
    const first = await open("r0", skew());
    replicas.push(first);
    space = (await first.db.createSpace({ name: "Fuzz" })).id;
    // Membership mode: no key link (it would make every joiner a key holder of an open space).
    if (!options.members) invite = await first.db.invite(space, "fuzz:");
    accounts = await first.db.transact(async (tx) => [
      await tx.patients.insert(
        { name: "acct-a", ward: "-", notes: "", visits: 0, kind: "account", balance: TOTAL / 2 },
        { space },
      ),
      await tx.patients.insert(
        { name: "acct-b", ward: "-", notes: "", visits: 0, kind: "account", balance: TOTAL / 2 },
        { space },
      ),
    ]);
    await stock?.start(first.db, space);
    const initial = 3 + rnd.int(2);
    let nextName = initial;
    if (options.members) {
      // Replica 0 starts the membership; the others join by member invitations (roles by seed).
      membership = new MembershipScenario({
        rnd,
        space,
        net,
        replicas: honest,
        openFresh: async (joins) => {
          const fresh: Replica[] = [];
          for (const [i, join] of joins.entries()) {
            fresh.push(await openDb(`r${nextName + i}`, skew()));
            await join(fresh[i]!.db, fresh[i]!.name);
          }
          nextName += joins.length;
          return fresh.map(startSync);
        },
        partitioned: () => void report.partitions++,
      });
      progress.trail = membership.trail;
      erasing = new EraseScenario({
        rnd,
        space,
        net,
        replicas: honest,
        partitioned: () => void report.partitions++,
        trail: membership.trail,
        seed,
        retentionRnd: seededRandom(seed ^ 0x7e7e_7e7e),
      });
      phase("starting the membership");
      await ensureMembership(first.db.replica, space, "Admin");
      nextName = 1;
      for (let i = 1; i < initial; i++) replicas.push(...(await membership.lateJoin()));
    } else for (let i = 1; i < initial; i++) replicas.push(await open(`r${i}`, skew()));

    const steps = options.steps ?? 10 + rnd.int(20);
    if (hostileOptions) {
      hostile = new HostileScenario({
        seed,
        steps,
        relay,
        space,
        db: () => replicas.find((r) => r.name === HOSTILE)!.db,
        options: hostileOptions,
      });
      // The replicas opened so far start reporting to it; then the hostile member joins.
      for (const r of replicas) watchHostile(r);
      replicas.push(await open(HOSTILE, skew()));
    }
    for (let step = 0; step < steps; step++) {
      const r = rnd.pick(replicas);
      const db = r.db;
      const patients = (await db.patients.where("kind").equals("patient").ids()) as string[];
      const pick = () => rnd.pick(patients);
      const op = rnd.int(13);
      phase(`step ${step}: ${r.name}, op ${op}`);
      report.operations++;
      try {
        if (membership && rnd.next() < 0.25) {
          replicas.push(...(await membership.step(replicas[0]!)));
        } else if (erasing && rnd.next() < 0.25) {
          // (Membership mode only, so the plain seeds draw exactly what they drew before.)
          await erasing.step();
        } else if (op <= 2 || patients.length === 0) {
          // Membership mode: each insert carries a canary, to find it where it must not be.
          const canary = membership ? `canary-${seed}-${step}-${r.name}` : undefined;
          const id = await db.patients.insert(
            {
              name: `P${rnd.int(1000)}`,
              ward: rnd.pick(["A", "B", "C"]),
              notes: canary ? canaryNotes(canary) : "note",
              visits: 0,
              kind: "patient",
              balance: 0,
            },
            { space },
          );
          if (canary) canaries.push(await canaryOf(db, space, id, canary));
        } else if (op === 3) {
          // The first conflicted ward (an inbox field) the replica lists is resolved. Else, without
          // members or a hostile member (whose refusals the catch below counts for `r` only), this
          // replica and another change the ward of a patient both hold at once, so that the two
          // changes can meet as a conflict; else one patient's ward changes.
          const wards = ["A", "B", "C", "D"];
          const [conflict] = await listConflicts(db.replica);
          // Drawn only where it is used: membership and hostile seeds keep the random stream (and so
          // the scenarios) they had before the inbox steps. Hostile seed 5007 under the stream that
          // drew it failed to converge in about half the runs (a replica stuck on a commit marked
          // bad-at-source): an open finding, see RELIABILITY.md.
          const other = membership || hostile ? r : rnd.pick(honest());
          const theirs = new Set<string>(
            other === r ? [] : ((await other.db.patients.where("kind").equals("patient").ids()) as string[]),
          );
          const shared = patients.find((p) => theirs.has(p));
          if (conflict) {
            await db.patients.resolve(conflict.id, "ward", rnd.pick(wards));
            report.resolutions++;
          } else if (shared) {
            const [w1, w2] = [rnd.pick(wards), rnd.pick(wards)];
            await Promise.all([
              db.patients.update(shared, (p) => void (p.ward = w1)),
              other.db.patients.update(shared, (p) => void (p.ward = w2)),
            ]);
          } else await db.patients.update(pick(), (p) => void (p.ward = rnd.pick(wards)));
        } else if (op === 4) {
          const at = rnd.int(6);
          await db.patients.update(
            pick(),
            (p) => void (p.notes = p.notes.slice(0, at) + `<${r.name}:${step}>` + p.notes.slice(at)),
          );
        } else if (op === 5) {
          await db.patients.update(pick(), (p) => asCounter(p.visits).increment(1 + rnd.int(3)));
        } else if (op === 6) {
          await db.patients.delete(pick());
        } else if (op === 7) {
          const some = rnd.shuffle(patients).slice(0, 3);
          await db.transact(async (tx) => {
            for (const id of some) await tx.patients.update(id, (p) => void (p.name = `${p.name}*`));
            await tx.patients.insert(
              { name: "T", ward: "A", notes: "", visits: 0, kind: "patient", balance: 0 },
              { space },
            );
          });
        } else if (op === 8 || op === 9) {
          const amount = 1 + rnd.int(20);
          const [from, to] = rnd.next() < 0.5 ? accounts : [accounts[1], accounts[0]];
          await db.transact(async (tx) => {
            await tx.patients.update(from, (p) => asCounter(p.balance).decrement(amount));
            await tx.patients.update(to, (p) => asCounter(p.balance).increment(amount));
          });
        } else if (op === 10) {
          if (net.isPartitioned(r.name)) {
            net.heal(r.name);
            db.reconnect(); // the network is back: as on the browser's "online" event
          } else {
            net.partition(r.name);
            report.partitions++;
          }
        } else if (op === 11) {
          // Restart: close and reopen from storage.
          r.stop();
          await db.close();
          const again = await open(r.name, r.clockOffset);
          replicas[replicas.indexOf(r)] = again;
          report.restarts++;
        } else if (honest().length < 6) {
          if (membership) replicas.push(...(await membership.lateJoin()));
          else replicas.push(await open(`r${nextName++}`, skew()));
          report.joins++;
        }
      } catch (e) {
        // A record deleted elsewhere meanwhile is the only expected failure; with members, also a
        // write the log refuses (a reader, a removed device, a non-member): counted.
        const code = (e as { code?: string }).code;
        if (membership && code === "NotPermitted") membership.stats.refusedWrites++;
        // A device whose redemption the log refused holds no space to write in.
        else if (membership?.outsiders.has(r.name) && code === "ValidationError")
          membership.stats.refusedWrites++;
        else if (code !== "NotFound") throw e;
      }
      if (hostile) {
        const h = replicas.find((x) => x.name === HOSTILE)!.db;
        const victims = [
          ...((await h.patients.where("kind").equals("patient").ids()) as RecordId[]),
          ...((accounts ?? []) as string[] as RecordId[]),
        ];
        const done = await hostile.step(step, { honest: honest(), victims });
        // A fresh device joins now, so it bootstraps from the forged snapshot (unless one replaced it).
        if (done.some((d) => d.action === "forged-snapshot" && d.answer === "stored")) {
          replicas.push(await open(`r${nextName++}`, skew()));
          report.joins++;
        }
      }
      await stock?.step(replicas);
      // Let the network move a little, by a seeded amount.
      for (let k = rnd.int(4); k > 0; k--) await new Promise((res) => setTimeout(res, 0));
    }

    // An invariant already broken is a divergence: report it now rather than after waiting to settle.
    phase("the invariant checks of the steps");
    await Promise.all(checks);
    if (failures.length > 0) throw new Divergence(failures.join("\n"));

    // Heal: no more faults, no partitions; wait until everyone agrees.
    net.calm();
    for (const r of replicas) net.heal(r.name);
    // The hostile member has done its part: it stops, so what the relay acknowledged is final. First it
    // syncs once more, as any device that leaves should: an own upload the network damaged on its way
    // to the relay is replaced only by its author (at its next connection), and none comes after this.
    const leaving = replicas.find((r) => r.name === HOSTILE);
    if (leaving) {
      // (It says synced only once the relay serves its last commit intact: seed 10170.)
      await settle([leaving], space, options.settleMs ?? 30_000).catch(() => undefined);
      leaving.stop();
    }
    // Poison commits too: each honest replica quarantines them in their slots, so its vector covers
    // them. (Skipped, a poison commit the hostile member injected last could still be on its way when
    // the replicas agreed, and the invariant then found it unreported: soak seed 10054.)
    const ghosts = () => ghostsAt(relay, space, authors, hostile?.injected ?? []);
    // Membership mode: only the replicas that end as members converge (the relay turns the removed
    // and the never-admitted away). Who they are is what replica 0 (the creator, always an admin)
    // says once it has heard from everyone: settle, ask again, until the answer stays the same.
    const finalState = async () => readMembership(replicas[0]!.db.replica.dexie, space);
    // What the relay holds that members must hold too. Not a removed device's commits beyond its cut:
    // every member refuses those, and one sealed under its own cancelled rotation's key never even
    // opens there (seed 6).
    const relayVector = async (): Promise<ReadonlyMap<string, number>> => {
      const held = await relay.store.vector(space);
      const cuts = membership ? (await finalState())?.removedDevices : undefined;
      return new Map([...held].map(([d, seq]) => [d, Math.min(seq, cuts?.get(d) ?? seq)]));
    };
    // Asked again at every check, as replica 0 learns more.
    const select = async (): Promise<Selection> => {
      const state = await finalState();
      const members = membersIn(state, honest());
      const gapped = await keyGapsIn(members, space);
      const live = members.filter((r) => !gapped.has(r));
      return { live, stranded: new Set(await strandedIn(state, live, space)), gapped };
    };
    const healedAt = Date.now();
    const triggers = membership
      ? honest().map((r) => {
          const dexie = r.db.replica.dexie;
          return r.db.live(() =>
            Promise.all([dexie.table("_members").count(), dexie.table("_spaces").get(space)]),
          );
        })
      : [];
    phase("settling");
    const settled = await settle(
      honest(),
      space,
      options.settleMs ?? 30_000,
      { vector: relayVector, ghosts },
      membership ? select : undefined,
      healedAt,
      triggers,
    );
    let { live, stranded, gapped } = settled;
    if (membership) {
      // The replicas left outside (removed, refused by the relay, never admitted) knock once more:
      // one the relay refused while it did not know its invitation yet gets in now (seed 20016), and
      // what one uploaded after the members agreed (seed 5014) must reach them too.
      phase("knocking");
      await knock(
        honest().filter((r) => !live.includes(r) && !gapped.has(r) && !membership!.outsiders.has(r.name)),
      );
      const holds = { vector: relayVector, ghosts };
      phase("settling again");
      ({ live, stranded, gapped } = await settle(
        live,
        space,
        options.settleMs ?? 30_000,
        holds,
        select,
        healedAt,
        triggers,
      ));
    }
    // A grant answers a request that arrived last: once one is due, the replicas settle again after it.
    for (let i = 0; stock && i < 5 && !(await stock.quiet(live)); i++) {
      phase("settling after grants");
      ({ live, stranded, gapped } = await settle(
        live,
        space,
        options.settleMs ?? 30_000,
        { vector: relayVector, ghosts },
        undefined,
        healedAt,
      ));
    }
    phase("checking");
    await Promise.all(checks);
    const stockFailures = (await stock?.failures(live)) ?? [];
    if (stockFailures.length > 0)
      throw new Divergence(`seed ${seed} (bounded counter):\n${stockFailures.join("\n")}`);
    if (stock) report.stock = stock.stats;
    if (failures.length > 0) throw new Divergence(failures.join("\n"));
    if (membership) {
      const state = await finalState();
      const removed = honest().filter((r) => state?.removedDevices.has(r.db.deviceId));
      const broken = await membershipFailures({ space, relay, members: live, removed, canaries, stranded });
      // A member that can never read an epoch is a failure too (it is left out of the comparisons).
      broken.push(...(await keyGapFailures([...gapped], space)));
      if (broken.length > 0) throw new Divergence(`seed ${seed} (members):\n${broken.join("\n")}`);
      const erased = await erasing!.failures(live);
      if (erased.length > 0) throw new Divergence(`seed ${seed} (erase):\n${erased.join("\n")}`);
      report.erase = erasing!.stats;
      report.members = {
        ...membership.stats,
        finalMembers: live.length,
        removedReplicas: removed.length,
        outsiders: honest().length - live.length - removed.length - gapped.size,
        stranded: stranded.size,
        keyGaps: gapped.size,
      };
    }
    // Poison devices are not required on the honest replicas (they refuse them); every other is.
    await compare(
      live,
      space,
      relayVector,
      new Set([
        ...(hostile?.poisonDevices() ?? []),
        ...(await ghosts()),
        ...[...stranded].map((r) => r.db.deviceId),
      ]),
    );
    if (hostile) {
      const broken = await hostile.failures(honest());
      if (broken.length > 0) throw new Divergence(`seed ${seed} (hostile):\n${broken.join("\n")}`);
      report.hostile = {
        injected: hostile.injected,
        forgedSnapshotsServed: hostile.forgedSnapshotsServed,
        forgedSnapshotsImported: hostile.forgedImportedBy.size,
        forgedSnapshotsReported: hostile.forgedReportedBy.size,
      };
    }
    // Last, since it closes them: every compared replica's change feed, read in two parts across a
    // reload, lists each commit it holds exactly once.
    phase("reading the change feeds");
    for (const r of live) r.stop();
    const feed = await feedFailures(live, seed, collections);
    if (feed.length > 0) throw new Divergence(`seed ${seed} (change feed):\n${feed.join("\n")}`);
    report.feedsChecked = live.length;
    report.replicas = replicas.length;
    report.snapshots = relay.metrics.snapshotsStored;
    return report;
  } catch (e) {
    // In hostile mode, say which hostile inputs were in, so a failure points at its item of issue 12;
    // in membership mode, which membership operations ran.
    const trail = hostile
      ? `\n${hostile.trail()}`
      : membership
        ? `\nmembership operations:\n${membership.trail.join("\n")}`
        : "";
    if (e instanceof Divergence) throw trail ? new Divergence(e.message + trail) : e;
    throw new Divergence(`seed ${seed}: ${(e as Error).stack ?? e}${trail}`);
  } finally {
    phase("closing");
    for (const r of replicas) {
      r.stop();
      await r.db.close().catch(() => undefined);
    }
    await relay.close();
  }
}
