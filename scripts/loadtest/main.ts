import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { RedisCluster } from "../../sync-server/test/redis-cluster-process.ts";
import { RedisProcess } from "../../sync-server/test/redis-process.ts";
import { startRelayProcess, type RelayProcess } from "../../sync-server/test/relay-process.ts";
import { claimedSpace } from "../../sync-server/src/testing/claimed-space.ts";
import { DeviceFleet } from "./device-fleet.ts";
import type { FleetPlan } from "./fleet-messages.ts";
import { fsyncProbe } from "./fsync-probe.ts";
import { runIdleSockets, type IdleResult } from "./idle-sockets.ts";
import { formatLoad, startLoadSampler, type LoadSampler } from "../load-average.mjs";
import { loadSeen, type LoadAverageSeen } from "./load-sampler.ts";
import { openFileLimit, sampleProcess, sampleProcesses, type ProcessSample } from "./process-usage.ts";
import type { WriteMode } from "./simulated-device.ts";

const USAGE = `Usage: npm run loadtest -- [options]
  --devices <n>            simulated devices, one WebSocket each (default 2000)
  --spaces <n>             spaces they are spread over (default 100)
  --writers-per-space <n>  devices per space that write; the others only receive (default 2)
  --rate <n>               commits per second per writer at most, one in flight (default 10)
  --mode one|pending       writers send one commit per frame, one frame in flight (default), or
                           every commit due since their previous frame, up to 4 frames in flight
                           (open loop: under overload the backlog grows; the fan-out writer's mode)
  --seconds <n>            writing time per scenario (default 20)
  --device-processes <n>   child processes the devices run in, apart from the relays (default 1)
  --fan-out-rate <n>       fan-out scenario: commits/s of its one writer (default 5000)
  --fan-out-devices <n>    fan-out scenario: devices of its one space (default 20)
  --idle-sockets <n>       idle scenario: authenticated idle WebSockets held by one relay (default 10000)
  --only <list>            comma-separated scenarios among sqlite, sqlite-pair, redis, cluster, fan-out, idle
                           (default: all of them). sqlite: 1 relay on SQLite; sqlite-pair: 2 relays on
                           SQLite, each with its own spaces; redis: 2 relays on one Redis; cluster: 2 relays on a 3-master Redis Cluster; fan-out:
                           1 relay on SQLite, one space, one writer; idle: 1 relay on SQLite, idle sockets
Everything runs on 127.0.0.1 and stops by itself; nothing is asserted about time.`;

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
// Beyond the sockets: stdio, the sqlite files, Redis connections, tsx's and Node's own descriptors.
const SPARE_FILES = 512;
// The whole run (connects, two scenarios, drains) may not take longer than this.
const HARD_LIMIT_MS = 10 * 60_000;
const LOAD_SAMPLE_MS = 1000;
const SCENARIOS = ["sqlite", "sqlite-pair", "redis", "cluster", "fan-out", "idle"] as const;
type Scenario = (typeof SCENARIOS)[number];

interface Options {
  devices: number;
  spaces: number;
  writersPerSpace: number;
  rate: number;
  mode: WriteMode;
  seconds: number;
  deviceProcesses: number;
  fanOutRate: number;
  fanOutDevices: number;
  idleSockets: number;
  scenarios: Scenario[];
}

interface Latency {
  count: number;
  p50: number;
  p99: number;
}

const cleanups: (() => Promise<unknown>)[] = [];

async function main(): Promise<void> {
  const options = parseOptions();
  if (!options) return;
  const hardStop = setTimeout(() => {
    process.stderr.write("loadtest: hard time limit reached, stopping everything\n");
    void cleanup().finally(() => process.exit(1));
  }, HARD_LIMIT_MS);
  for (const signal of ["SIGINT", "SIGTERM"] as const)
    process.on(signal, () => void cleanup().finally(() => process.exit(130)));

  const loadAtStart = loadavg().map(round);
  // The 1-minute load average every second for the whole run; each scenario summarises its stretch.
  const runLoad = startLoadSampler({ intervalMs: LOAD_SAMPLE_MS });
  const fsyncMs = fsyncProbe();
  process.stdout.write(
    `disk: 4 KiB write+fsync p50 ${fsyncMs.p50} ms, p99 ${fsyncMs.p99} ms; load average ${loadAtStart.join(" ")}\n`,
  );
  const results: ScenarioResult[] = [];
  const idle: (IdleResult & { load: LoadAverageSeen })[] = [];
  try {
    for (const scenario of options.scenarios) {
      if (scenario === "idle") {
        const dir = mkdtempSync(join(tmpdir(), "shoal-loadtest-"));
        cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
        const relay = await startRelayProcess([
          ...relayArgs(options.idleSockets),
          "--store",
          "sqlite",
          "--data",
          dir,
        ]);
        cleanups.push(() => relay.stop("SIGTERM"));
        const from = runLoad.mark();
        const result = await runIdleSockets(relay, options.idleSockets, options.deviceProcesses);
        idle.push({ ...result, load: loadSeen(runLoad, from, runLoad.mark()) });
        await relay.stop("SIGTERM");
      } else results.push(await runScenario(scenario, options, runLoad));
    }
  } finally {
    await cleanup();
    clearTimeout(hardStop);
  }
  const load = { cpus: runLoad.cpus, sampleMs: LOAD_SAMPLE_MS, atStart: loadAtStart, run: runLoad.stop() };
  printTable(results);
  for (const r of idle)
    process.stdout.write(
      `idle: ${r.sockets} authenticated idle WebSockets in ${r.spaces} spaces on one relay: RSS ${r.relayRssMiB} MiB ` +
        `(${r.relayRssBeforeMiB} MiB before), ${r.kibPerSocket} KiB per socket; opened in ${r.connectSeconds} s; ` +
        `load average (1 min) ${formatLoad(r.load)}\n`,
    );
  process.stdout.write(`load average (1 min) for the whole run: ${formatLoad(load.run)}\n`);
  const stamp = new Date().toISOString().replace(/[:.]/g, "-");
  const dir = join(ROOT, "bench", "results");
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `loadtest-${stamp}.json`);
  const machine = {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model,
    memoryGiB: round(totalmem() / 2 ** 30),
    node: process.version,
    // Other work on the machine skews every figure: record how busy it was.
    loadAverageAtStart: loadAtStart,
    loadAverageAtEnd: loadavg().map(round),
    fsyncMs,
  };
  writeFileSync(
    file,
    // `load` is new since issue 15 (older results have none); so are loadAverage.min/cpus/samples/loaded
    // in each scenario and `load` in each idle result.
    JSON.stringify({ startedAt: new Date().toISOString(), options, machine, results, idle, load }, null, 2) +
      "\n",
  );
  process.stdout.write(`\nwrote ${file}\n`);
}

function parseOptions(): Options | undefined {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      devices: { type: "string", default: "2000" },
      spaces: { type: "string", default: "100" },
      "writers-per-space": { type: "string", default: "2" },
      rate: { type: "string", default: "10" },
      seconds: { type: "string", default: "20" },
      mode: { type: "string", default: "one" },
      "device-processes": { type: "string", default: "1" },
      "fan-out-rate": { type: "string", default: "5000" },
      "fan-out-devices": { type: "string", default: "20" },
      "idle-sockets": { type: "string", default: "10000" },
      only: { type: "string" },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE + "\n");
    return undefined;
  }
  const int = (v: string, name: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n <= 0) throw new Error(`--${name} needs a positive integer, not ${v}`);
    return n;
  };
  const options: Options = {
    devices: int(values.devices, "devices"),
    spaces: int(values.spaces, "spaces"),
    writersPerSpace: int(values["writers-per-space"], "writers-per-space"),
    rate: int(values.rate, "rate"),
    mode: values.mode === "pending" ? "pending" : "one",
    seconds: int(values.seconds, "seconds"),
    deviceProcesses: int(values["device-processes"], "device-processes"),
    fanOutRate: int(values["fan-out-rate"], "fan-out-rate"),
    fanOutDevices: int(values["fan-out-devices"], "fan-out-devices"),
    idleSockets: int(values["idle-sockets"], "idle-sockets"),
    scenarios: parseScenarios(values.only),
  };
  if (values.mode !== "one" && values.mode !== "pending") throw new Error(`--mode is one or pending`);
  // The relay and the devices each hold one descriptor per socket: the larger of the two loads counts.
  const sockets = Math.max(options.devices, options.scenarios.includes("idle") ? options.idleSockets : 0);
  const fitted = fitToFileLimit(sockets);
  if (fitted < sockets) {
    options.devices = Math.min(options.devices, fitted);
    options.idleSockets = Math.min(options.idleSockets, fitted);
  }
  options.spaces = Math.min(options.spaces, options.devices);
  return options;
}

/**
 * This process holds one socket per device (and each relay its share): make sure the soft limit on
 * open files allows it, raising it toward the hard limit with `prlimit` (children inherit it), and
 * otherwise lowering the device count with a message that says how to get the full run.
 */
function parseScenarios(only: string | undefined): Scenario[] {
  if (only === undefined) return [...SCENARIOS];
  const picked = only.split(",").map((s) => s.trim());
  for (const s of picked)
    if (!(SCENARIOS as readonly string[]).includes(s))
      throw new Error(`--only takes ${SCENARIOS.join(", ")}; not ${s}`);
  return picked as Scenario[];
}

function fitToFileLimit(devices: number): number {
  const needed = devices + SPARE_FILES;
  let limit = openFileLimit();
  if (!limit || limit.soft >= needed) return devices;
  if (limit.hard > limit.soft) {
    try {
      const target = Math.min(limit.hard, Math.max(needed, 65_536));
      execFileSync("prlimit", ["--pid", String(process.pid), `--nofile=${target}:${limit.hard}`]);
      limit = openFileLimit() ?? limit;
    } catch {
      // prlimit missing or refused: fall through to lowering the count.
    }
  }
  if (limit.soft >= needed) return devices;
  const fitted = Math.max(1, limit.soft - SPARE_FILES);
  process.stderr.write(
    `loadtest: the open-file limit is ${limit.soft} (hard ${limit.hard}), too low for ${devices} sockets; ` +
      `running ${fitted} devices. For the full run: ulimit -n ${needed} (or more) in this shell first.\n`,
  );
  return fitted;
}

/** The writing load of one scenario (the defaults, or the fan-out scenario's one space). */
interface LoadShape {
  devices: number;
  spaces: number;
  writersPerSpace: number;
  rate: number;
  mode: WriteMode;
}

// Limits meant against strangers on the internet, raised because every simulated device comes from
// 127.0.0.1 and each run registers hundreds of spaces: connections in total and per address, new spaces
// per address and hour. The per-connection and per-space rate limits keep their defaults, except in the
// fan-out scenario (see there).
function relayArgs(sockets: number): string[] {
  const connections = String(sockets + 1000);
  return [
    "--quiet",
    "--idle-timeout-ms",
    "600000",
    "--max-connections",
    connections,
    "--max-connections-per-address",
    connections,
    "--new-spaces-per-hour",
    "1000000",
  ];
}

async function runScenario(scenario: Exclude<Scenario, "idle">, o: Options, runLoad: LoadSampler) {
  const shape: LoadShape =
    scenario === "fan-out"
      ? { devices: o.fanOutDevices, spaces: 1, writersPerSpace: 1, rate: o.fanOutRate, mode: "pending" }
      : o;
  process.stdout.write(
    `\n== ${scenario}: ${shape.devices} devices, ${shape.spaces} spaces, ${o.seconds} s ==\n`,
  );
  const args = relayArgs(shape.devices);
  // One device writing thousands of commits a second is beyond what a connection may do by default
  // (100 frames/s, 4,000 commits/s, 8 MiB/s): the fan-out scenario measures the relay, not the limits.
  if (scenario === "fan-out")
    args.push(
      ...["--rate", "100000", "--connection-commits-per-second", "100000"],
      ...["--connection-bytes-per-second", String(1 << 30), "--space-bytes-per-second", String(1 << 30)],
    );
  let redis: RedisProcess | undefined;
  let cluster: RedisCluster | undefined;
  const relays: RelayProcess[] = [];
  const stopAll = async () => {
    await Promise.all(relays.map((r) => r.stop("SIGTERM")));
    await redis?.dispose();
    await cluster?.dispose();
  };
  cleanups.push(stopAll);
  if (scenario !== "redis" && scenario !== "cluster") {
    const count = scenario === "sqlite-pair" ? 2 : 1;
    for (let i = 0; i < count; i++) {
      const dir = mkdtempSync(join(tmpdir(), "shoal-loadtest-"));
      cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
      relays.push(await startRelayProcess([...args, "--store", "sqlite", "--data", dir]));
    }
  } else {
    let url: string;
    if (scenario === "redis") url = (redis = await RedisProcess.start()).url;
    else url = (cluster = await RedisCluster.start({ masters: 3 })).url;
    relays.push(...(await Promise.all([0, 1].map(() => startRelayProcess([...args, "--store", url])))));
  }
  // Every Redis process: the one server, or the cluster's three masters (CPU and memory summed).
  const redisPids = redis?.pid ? [redis.pid] : (cluster?.nodes.map((n) => n.pid!) ?? []);

  const spaces = Array.from({ length: shape.spaces }, () => claimedSpace());
  const plans: FleetPlan[] = Array.from({ length: shape.devices }, (_, i) => {
    const spaceIndex = i % shape.spaces;
    const space = spaces[spaceIndex]!;
    const rank = Math.floor(i / shape.spaces); // position within its space
    // On Redis a space's devices alternate between the instances; two SQLite instances cannot share a
    // space, so there each space lives on one of them.
    const instance = scenario === "sqlite-pair" ? spaceIndex % 2 : rank % relays.length;
    return {
      wsUrl: relays[instance]!.wsUrl,
      instance,
      space: space.space,
      token: space.token,
      claim: space.claim,
      writer: rank < shape.writersPerSpace,
    };
  });

  const fleet = await DeviceFleet.start(Math.min(o.deviceProcesses, shape.devices));
  cleanups.push(() => fleet.close());
  const connectStart = performance.now();
  const opened = await fleet.connect(plans);
  const connectSeconds = (performance.now() - connectStart) / 1000;
  process.stdout.write(`connected ${opened} sockets in ${connectSeconds.toFixed(1)} s; writing...\n`);

  const pids = relays.map((r) => r.child.pid!);
  const before = pids.map(sampleProcess);
  const redisBefore = redisPids.length ? sampleProcesses(redisPids) : undefined;
  const fleetBefore = fleet.pids.map(sampleProcess);
  const loadFrom = runLoad.mark();
  const started = performance.now();
  await fleet.write(shape.rate, shape.mode);
  await new Promise((r) => setTimeout(r, o.seconds * 1000));
  const acked = await fleet.stop();
  const wallSeconds = (performance.now() - started) / 1000;
  const after = pids.map(sampleProcess);
  const redisAfter = redisPids.length ? sampleProcesses(redisPids) : undefined;
  const fleetAfter = fleet.pids.map(sampleProcess);
  const loadAverage = loadSeen(runLoad, loadFrom, runLoad.mark());
  // Pushes still on their way: wait until deliveries stop growing (bounded).
  let deliveries = await fleet.deliveries();
  await settle(async () => (deliveries = await fleet.deliveries()));
  const record = await fleet.report();

  const metrics = await Promise.all(relays.map((r) => fetch(`${r.url}/metrics`).then((res) => res.text())));
  await fleet.close();
  await stopAll();

  const perSpace = shape.devices / shape.spaces;
  const fleetUsage = fleet.pids.map((_, i) => usage(fleetBefore[i], fleetAfter[i], wallSeconds));
  return {
    scenario,
    instances: relays.length,
    devices: opened,
    writers: plans.filter((p) => p.writer).length,
    mode: shape.mode,
    offeredCommitsPerSecond: plans.filter((p) => p.writer).length * shape.rate,
    connectSeconds: round(connectSeconds),
    wallSeconds: round(wallSeconds),
    commitsAccepted: acked,
    commitsPerSecond: round(acked / wallSeconds),
    refused: record.refused,
    closedEarly: record.closedEarly,
    ackMs: summarize(record.ackMs),
    deliverMs: {
      all: summarize(
        Float64Array.from([...record.deliverMs.sameInstance, ...record.deliverMs.crossInstance]),
      ),
      sameInstance: summarize(record.deliverMs.sameInstance),
      crossInstance: summarize(record.deliverMs.crossInstance),
    },
    deliveries,
    // Acks of the last frames may arrive after the writers stopped (pending mode): count them too.
    deliveriesExpected: Math.round(record.acked * (perSpace - 1)),
    serverFanOutLagMeanMs: metrics.map((m) =>
      round(
        (1000 * metric(m, "shoal_fanout_lag_seconds_sum")) /
          Math.max(1, metric(m, "shoal_fanout_lag_seconds_count")),
      ),
    ),
    redisErrors: metrics.map((m) => sumOf(m, "shoal_redis_errors_total")),
    // Limits the relay hit (reading paused by a rate limit, connections refused): 0 in a clean run.
    relayLimitHits: metrics.map((m) => labelledSeries(m, "shoal_refusals_total")),
    // SQLite group commit: durable write transactions (one fsync each) and commits per transaction.
    storeTransactions: metrics.map((m) => metric(m, "shoal_store_batch_commits_count")),
    commitsPerTransaction: metrics.map((m) =>
      round(
        metric(m, "shoal_store_batch_commits_sum") /
          Math.max(1, metric(m, "shoal_store_batch_commits_count")),
      ),
    ),
    relayUsage: pids.map((_, i) => usage(before[i], after[i], wallSeconds)),
    redisUsage: redisBefore && redisAfter ? usage(redisBefore, redisAfter, wallSeconds) : undefined,
    // The devices' processes together (CPU summed, RSS summed), then each one.
    loadGeneratorUsage: sumUsage(fleetUsage),
    deviceProcessUsage: fleetUsage,
    loadAverage,
  };
}

type ScenarioResult = Awaited<ReturnType<typeof runScenario>>;

function usage(before: ProcessSample | undefined, after: ProcessSample | undefined, wallSeconds: number) {
  if (!before || !after) return undefined;
  return {
    cpuPercent: round((100 * (after.cpuSeconds - before.cpuSeconds)) / wallSeconds),
    rssMiB: round(after.rssMiB),
    peakRssMiB: round(after.peakRssMiB),
  };
}

type Usage = ReturnType<typeof usage>;

function sumUsage(all: Usage[]): Usage {
  if (all.some((u) => !u)) return undefined;
  const sum = (pick: (u: NonNullable<Usage>) => number) => round(all.reduce((n, u) => n + pick(u!), 0));
  return {
    cpuPercent: sum((u) => u.cpuPercent),
    rssMiB: sum((u) => u.rssMiB),
    peakRssMiB: sum((u) => u.peakRssMiB),
  };
}

/** Resolves once `value()` has not changed for 500 ms, or after 15 s. */
async function settle(value: () => Promise<number>): Promise<void> {
  const deadline = Date.now() + 15_000;
  let last = await value();
  let stableSince = Date.now();
  while (Date.now() < deadline && Date.now() - stableSince < 500) {
    await new Promise((r) => setTimeout(r, 50));
    const now = await value();
    if (now !== last) {
      last = now;
      stableSince = Date.now();
    }
  }
}

function summarize(samples: Float64Array): Latency {
  if (samples.length === 0) return { count: 0, p50: 0, p99: 0 };
  const sorted = samples.slice().sort();
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
  return { count: samples.length, p50: round(at(0.5)), p99: round(at(0.99)) };
}

function metric(text: string, name: string): number {
  const line = text.split("\n").find((l) => l.startsWith(name + " "));
  return line ? Number(line.slice(name.length + 1)) : 0;
}

function labelledSeries(text: string, name: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const l of text.split("\n").filter((l) => l.startsWith(name + "{")))
    out[l.slice(name.length + 1, l.indexOf("}"))] = Number(l.slice(l.lastIndexOf(" ") + 1));
  return out;
}

function sumOf(text: string, name: string): number {
  return text
    .split("\n")
    .filter((l) => l.startsWith(name + "{"))
    .reduce((n, l) => n + Number(l.slice(l.lastIndexOf(" ") + 1)), 0);
}

function round(n: number): number {
  return Math.round(n * 10) / 10;
}

const SCENARIO_LABELS: Record<ScenarioResult["scenario"], string> = {
  sqlite: "1 instance, sqlite",
  "sqlite-pair": "2 instances, sqlite, disjoint spaces",
  redis: "2 instances, Redis",
  cluster: "2 instances, Redis Cluster (3 masters)",
  "fan-out": "fan-out, 1 space, sqlite",
};

function printTable(results: ScenarioResult[]): void {
  const rows = results.map((r) => ({
    scenario: SCENARIO_LABELS[r.scenario],
    sockets: r.devices,
    "commits/s": r.commitsPerSecond,
    "ack p50/p99 ms": `${r.ackMs.p50} / ${r.ackMs.p99}`,
    "fan-out p50/p99 ms": `${r.deliverMs.all.p50} / ${r.deliverMs.all.p99}`,
    "cross-instance p50/p99 ms": r.deliverMs.crossInstance.count
      ? `${r.deliverMs.crossInstance.p50} / ${r.deliverMs.crossInstance.p99}`
      : "-",
    delivered: `${r.deliveries}/${r.deliveriesExpected}`,
    "relay CPU % / RSS MiB": r.relayUsage.map((u) => `${u?.cpuPercent} / ${u?.rssMiB}`).join(", "),
    "redis CPU % / RSS MiB": r.redisUsage ? `${r.redisUsage.cpuPercent} / ${r.redisUsage.rssMiB}` : "-",
    "devices CPU %": r.loadGeneratorUsage?.cpuPercent,
    "commits/fsync": r.commitsPerTransaction.join(", "),
    "load min/med/max": `${r.loadAverage.min} / ${r.loadAverage.median} / ${r.loadAverage.max}${r.loadAverage.loaded ? " LOADED" : ""}`,
  }));
  process.stdout.write("\n");
  console.table(rows);
  if (results.some((r) => r.loadAverage.loaded))
    process.stdout.write(
      `LOADED: the 1-minute load average went above the ${results[0]!.loadAverage.cpus} cores during a scenario; its figures are inflated\n`,
    );
}

async function cleanup(): Promise<void> {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
}

main().catch(async (e: unknown) => {
  process.stderr.write(`loadtest: ${e instanceof Error ? e.stack : String(e)}\n`);
  await cleanup();
  process.exit(1);
});
