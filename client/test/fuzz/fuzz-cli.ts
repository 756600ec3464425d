/**
 * `npm run fuzz -- --seeds N --minutes M [--from S]` runs a soak of seeded scenarios and prints scenarios
 * run, operations, faults injected and divergences; `npm run fuzz -- --seed S` replays one seed.
 * `--hostile` adds the hostile member (issue 12 items 1-5; `--devices N` fake device ids for item 4,
 * `--actions deep,huge,...` only these inputs, names in `HOSTILE_ACTIONS`),
 * `--bit-flips P` flips one bit in a frame with probability P, both ways (item 10); `--settle-ms T`
 * waits up to T ms (default 30,000) for the healed replicas to converge; `--hang-ms T` reports a
 * scenario still running after T ms (default 4 settles) as hung, with where it was. A hostile seed
 * replays with the same flags: `npm run fuzz -- --hostile --bit-flips 0.002 --seed S`.
 */
import "fake-indexeddb/auto";
import {
  runScenario,
  type ScenarioOptions,
  type ScenarioProgress,
  type ScenarioReport,
} from "./fuzz-driver.ts";
import { emptyMembershipStats } from "./membership-scenario.ts";
import { emptyEraseStats } from "./erase-scenario.ts";
import { DEFAULT_FAKE_DEVICES, HOSTILE_ACTIONS, type HostileAction } from "./hostile-member.ts";

const args = process.argv.slice(2);
const opt = (name: string, fallback: number) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const one = args.includes("--seed") ? opt("seed", 0) : undefined;
const seeds = one !== undefined ? 1 : opt("seeds", 200);
const minutes = opt("minutes", 10);
const from = one ?? opt("from", Math.floor(Math.random() * 1e9));
const deadline = Date.now() + minutes * 60_000;
const list = (name: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? (args[i + 1] ?? "").split(",").filter(Boolean) : undefined;
};
const actions = list("actions") as HostileAction[] | undefined;
const unknown = actions?.filter((a) => !HOSTILE_ACTIONS.includes(a));
if (unknown?.length) throw new Error(`Unknown hostile actions ${unknown}; known: ${HOSTILE_ACTIONS}`);
const options: ScenarioOptions = {
  ...(args.includes("--hostile")
    ? { hostile: { devices: opt("devices", DEFAULT_FAKE_DEVICES), ...(actions ? { actions } : {}) } }
    : {}),
  ...(args.includes("--bit-flips") ? { bitFlips: opt("bit-flips", 0) } : {}),
  ...(args.includes("--settle-ms") ? { settleMs: opt("settle-ms", 30_000) } : {}),
  ...(args.includes("--members") ? { members: true } : {}),
};
// A scenario takes at most two settles, a knock and its steps: one still running after this hangs.
// It is reported with where it was, and left behind (its replicas stay open) so the soak goes on.
const hangMs = opt("hang-ms", 4 * (options.settleMs ?? 30_000));
const flags = `${options.members ? " --members" : ""}${args.includes("--hostile") ? ` --hostile --devices ${opt("devices", DEFAULT_FAKE_DEVICES)}` : ""}${
  actions ? ` --actions ${actions.join(",")}` : ""
}${options.bitFlips ? ` --bit-flips ${options.bitFlips}` : ""}${
  options.settleMs ? ` --settle-ms ${options.settleMs}` : ""
}`;

const totals = {
  scenarios: 0,
  operations: 0,
  dropped: 0,
  duplicated: 0,
  disconnects: 0,
  refused: 0,
  restarts: 0,
  partitions: 0,
  joins: 0,
  invariantChecks: 0,
  skewed: 0,
  snapshots: 0,
  flipped: 0,
  hostileInputs: 0,
  forgedServed: 0,
  forgedReported: 0,
};
// Membership mode: operations by kind, and how the replicas ended.
const members = {
  ...emptyMembershipStats(),
  finalMembers: 0,
  removedReplicas: 0,
  outsiders: 0,
  stranded: 0,
  keyGaps: 0,
};
// Membership mode: the erase, retention and restore steps.
const erase = emptyEraseStats();
// Plain mode: the bounded counter steps.
const stock = { takes: 0, refused: 0, adds: 0, requests: 0, checks: 0 };
const diverged: { seed: number; message: string }[] = [];
console.log(`fuzz: from seed ${from}, up to ${seeds} scenarios or ${minutes} min${flags}`);
for (let i = 0; i < seeds && Date.now() < deadline; i++) {
  const seed = from + i;
  try {
    const progress: ScenarioProgress = { phase: "" };
    let watchdog: ReturnType<typeof setTimeout> | undefined;
    const hung = new Promise<never>((_, reject) => {
      watchdog = setTimeout(() => {
        const trail = progress.trail?.length ? `\nmembership operations:\n${progress.trail.join("\n")}` : "";
        reject(new Error(`hung for ${hangMs / 1000} s in "${progress.phase}"${trail}`));
      }, hangMs);
    });
    const r: ScenarioReport = await Promise.race([runScenario(seed, { ...options, progress }), hung]).finally(
      () => clearTimeout(watchdog),
    );
    totals.scenarios++;
    totals.operations += r.operations;
    totals.dropped += r.network.dropped;
    totals.duplicated += r.network.duplicated;
    totals.disconnects += r.network.disconnects;
    totals.refused += r.network.refused;
    totals.restarts += r.restarts;
    totals.partitions += r.partitions;
    totals.joins += r.joins;
    totals.invariantChecks += r.invariantChecks;
    totals.skewed += r.skewed ? 1 : 0;
    totals.snapshots += r.snapshots;
    totals.flipped += r.network.flipped;
    totals.hostileInputs += r.hostile?.injected.length ?? 0;
    totals.forgedServed += r.hostile?.forgedSnapshotsServed ?? 0;
    totals.forgedReported += r.hostile?.forgedSnapshotsReported ?? 0;
    for (const k of Object.keys(members) as (keyof typeof members)[]) members[k] += r.members?.[k] ?? 0;
    for (const k of Object.keys(erase) as (keyof typeof erase)[]) erase[k] += r.erase?.[k] ?? 0;
    for (const k of Object.keys(stock) as (keyof typeof stock)[]) stock[k] += r.stock?.[k] ?? 0;
  } catch (e) {
    totals.scenarios++;
    const message = (e as Error).message;
    diverged.push({ seed, message });
    console.log(`DIVERGED seed ${seed}: ${message}\n  replay: npm run fuzz --${flags} --seed ${seed}`);
  }
}
const faults =
  totals.dropped + totals.duplicated + totals.refused + totals.restarts + totals.partitions + totals.flipped;
console.log(
  `scenarios ${totals.scenarios}, operations ${totals.operations}, faults injected ${faults} ` +
    `(dropped ${totals.dropped}, duplicated ${totals.duplicated}, refused ${totals.refused}, restarts ${totals.restarts}, partitions ${totals.partitions}, bit flips ${totals.flipped}), ` +
    `hostile inputs ${totals.hostileInputs} (forged snapshot served ${totals.forgedServed} times, reported by ${totals.forgedReported} replicas), ` +
    `joins ${totals.joins}, snapshots ${totals.snapshots}, skewed-clock scenarios ${totals.skewed}, invariant checks ${totals.invariantChecks}, divergences ${diverged.length}`,
);
if (options.members)
  console.log(
    `membership: operations ${members.operations} (invitations ${members.invitations}, redemptions ${members.redemptions}, ` +
      `role changes ${members.roleChanges}, removals ${members.removals}, mutual admin removals ${members.mutualRemovals}, ` +
      `revocations ${members.revocations}, double redemptions ${members.doubleRedemptions}), refused writes ${members.refusedWrites}, ` +
      `refused ops ${members.refusedOps}, refused joins ${members.refusedJoins}; replicas ending as members ${members.finalMembers}, ` +
      `removed ${members.removedReplicas}, never members ${members.outsiders}, demoted with refused own writes ${members.stranded}; ` +
      `KEY GAPS ${members.keyGaps} (members that can never read an epoch, left out of the checks; must be 0)`,
  );
if (options.members)
  console.log(
    `erase and restore: erases ${erase.erases} (edited meanwhile elsewhere ${erase.concurrentEdits}, such edits refused ${erase.editsRefused}), ` +
      `record restores ${erase.restores}, space restores ${erase.spaceRestores}, refused ${erase.refused}; ` +
      `retention: dated inserts ${erase.retentionInserts}, sweeps ${erase.sweeps} (erased ${erase.sweptErased}, not permitted ${erase.sweptNotPermitted}), dated records erased by the end ${erase.datedErased}`,
  );
if (!options.members && !options.hostile)
  console.log(
    `bounded counter: takes ${stock.takes} (refused for lack of rights ${stock.refused}), adds ${stock.adds}, ` +
      `requests ${stock.requests}, invariant checks ${stock.checks}`,
  );
process.exit(diverged.length > 0 ? 1 : 0);
