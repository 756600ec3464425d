/**
 * `npm run fuzz -- --seeds N --minutes M [--from S]` runs a soak of seeded scenarios and prints scenarios
 * run, operations, faults injected and divergences; `npm run fuzz -- --seed S` replays one seed.
 */
import "fake-indexeddb/auto";
import { runScenario, type ScenarioReport } from "./fuzz-driver.ts";

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
};
const diverged: { seed: number; message: string }[] = [];
console.log(`fuzz: from seed ${from}, up to ${seeds} scenarios or ${minutes} min`);
for (let i = 0; i < seeds && Date.now() < deadline; i++) {
  const seed = from + i;
  try {
    const r: ScenarioReport = await runScenario(seed);
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
  } catch (e) {
    totals.scenarios++;
    const message = (e as Error).message;
    diverged.push({ seed, message });
    console.log(`DIVERGED seed ${seed}: ${message}\n  replay: npm run fuzz -- --seed ${seed}`);
  }
}
const faults = totals.dropped + totals.duplicated + totals.refused + totals.restarts + totals.partitions;
console.log(
  `scenarios ${totals.scenarios}, operations ${totals.operations}, faults injected ${faults} ` +
    `(dropped ${totals.dropped}, duplicated ${totals.duplicated}, refused ${totals.refused}, restarts ${totals.restarts}, partitions ${totals.partitions}), ` +
    `joins ${totals.joins}, snapshots ${totals.snapshots}, skewed-clock scenarios ${totals.skewed}, invariant checks ${totals.invariantChecks}, divergences ${diverged.length}`,
);
process.exit(diverged.length > 0 ? 1 : 0);
