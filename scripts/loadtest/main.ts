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
import { newDeviceKey } from "./device-key.ts";
import { fsyncProbe } from "./fsync-probe.ts";
import { openFileLimit, sampleProcess, sampleProcesses, type ProcessSample } from "./process-usage.ts";
import { SimulatedDevice, type DevicePlan, type LoadRecorder } from "./simulated-device.ts";

const USAGE = `Usage: npm run loadtest -- [options]
  --devices <n>            simulated devices, one WebSocket each (default 2000)
  --spaces <n>             spaces they are spread over (default 100)
  --writers-per-space <n>  devices per space that write; the others only receive (default 2)
  --rate <n>               commits per second per writer at most, one in flight (default 10)
  --seconds <n>            writing time per scenario (default 20)
  --only sqlite|redis|cluster
                           run one scenario (default all three; cluster: two relays on a local
                           3-master Redis Cluster)
Everything runs on 127.0.0.1 and stops by itself; nothing is asserted about time.`;

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
// Beyond the sockets: stdio, the sqlite files, Redis connections, tsx's and Node's own descriptors.
const SPARE_FILES = 512;
// The whole run (connects, two scenarios, drains) may not take longer than this.
const HARD_LIMIT_MS = 10 * 60_000;
const CONNECT_WAVE = 200;

interface Options {
  devices: number;
  spaces: number;
  writersPerSpace: number;
  rate: number;
  seconds: number;
  scenarios: Scenario[];
}

type Scenario = "sqlite" | "redis" | "cluster";
const SCENARIOS: readonly Scenario[] = ["sqlite", "redis", "cluster"];

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
  const fsyncMs = fsyncProbe();
  process.stdout.write(
    `disk: 4 KiB write+fsync p50 ${fsyncMs.p50} ms, p99 ${fsyncMs.p99} ms; load average ${loadAtStart.join(" ")}\n`,
  );
  const results = [];
  try {
    for (const scenario of options.scenarios) results.push(await runScenario(scenario, options));
  } finally {
    await cleanup();
    clearTimeout(hardStop);
  }
  printTable(results);
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
    JSON.stringify({ startedAt: new Date().toISOString(), options, machine, results }, null, 2) + "\n",
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
    seconds: int(values.seconds, "seconds"),
    scenarios: SCENARIOS.includes(values.only as Scenario) ? [values.only as Scenario] : [...SCENARIOS],
  };
  options.devices = fitToFileLimit(options.devices);
  options.spaces = Math.min(options.spaces, options.devices);
  return options;
}

/**
 * This process holds one socket per device (and each relay its share): make sure the soft limit on
 * open files allows it, raising it toward the hard limit with `prlimit` (children inherit it), and
 * otherwise lowering the device count with a message that says how to get the full run.
 */
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

async function runScenario(scenario: Scenario, o: Options) {
  process.stdout.write(`\n== ${scenario}: ${o.devices} devices, ${o.spaces} spaces, ${o.seconds} s ==\n`);
  const relayArgs = ["--quiet", "--idle-timeout-ms", "600000"];
  let redis: RedisProcess | undefined;
  let cluster: RedisCluster | undefined;
  const relays: RelayProcess[] = [];
  const stopAll = async () => {
    await Promise.all(relays.map((r) => r.stop("SIGTERM")));
    await redis?.dispose();
    await cluster?.dispose();
  };
  cleanups.push(stopAll);
  if (scenario === "sqlite") {
    const dir = mkdtempSync(join(tmpdir(), "shoal-loadtest-"));
    cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
    relays.push(await startRelayProcess([...relayArgs, "--store", "sqlite", "--data", dir]));
  } else {
    let url: string;
    if (scenario === "redis") url = (redis = await RedisProcess.start()).url;
    else url = (cluster = await RedisCluster.start({ masters: 3 })).url;
    relays.push(...(await Promise.all([0, 1].map(() => startRelayProcess([...relayArgs, "--store", url])))));
  }
  // Every Redis process: the one server, or the cluster's three masters (CPU and memory summed).
  const redisPids = redis?.pid ? [redis.pid] : (cluster?.nodes.map((n) => n.pid!) ?? []);

  const recorder: LoadRecorder = {
    ackMs: [],
    deliverMs: { sameInstance: [], crossInstance: [] },
    acked: 0,
    refused: 0,
    closedEarly: 0,
  };
  const spaces = Array.from({ length: o.spaces }, () => ({
    id: randomBytes(16).toString("hex"),
    token: new Uint8Array(randomBytes(32)),
  }));
  const plans: (DevicePlan & { writer: boolean })[] = Array.from({ length: o.devices }, (_, i) => {
    const space = spaces[i % o.spaces]!;
    const rank = Math.floor(i / o.spaces); // position within its space
    const instance = rank % relays.length; // a space's devices alternate between instances
    return {
      wsUrl: relays[instance]!.wsUrl,
      instance,
      space: space.id,
      token: space.token,
      key: newDeviceKey(),
      writer: rank < o.writersPerSpace,
    };
  });

  const connectStart = performance.now();
  const devices: SimulatedDevice[] = [];
  const writers: SimulatedDevice[] = [];
  for (let i = 0; i < plans.length; i += CONNECT_WAVE) {
    const wave = plans.slice(i, i + CONNECT_WAVE);
    const opened = await Promise.all(wave.map((p) => SimulatedDevice.connect(p, recorder)));
    opened.forEach((d, j) => {
      devices.push(d);
      if (wave[j]!.writer) writers.push(d);
    });
  }
  cleanups.push(async () => devices.forEach((d) => d.close()));
  const connectSeconds = (performance.now() - connectStart) / 1000;
  process.stdout.write(`connected ${devices.length} sockets in ${connectSeconds.toFixed(1)} s; writing...\n`);

  const pids = relays.map((r) => r.child.pid!);
  const before = pids.map(sampleProcess);
  const redisBefore = redisPids.length ? sampleProcesses(redisPids) : undefined;
  const selfBefore = sampleProcess(process.pid);
  const started = performance.now();
  for (const w of writers) w.startWriting(o.rate);
  await new Promise((r) => setTimeout(r, o.seconds * 1000));
  await Promise.all(writers.map((w) => w.stopWriting()));
  const wallSeconds = (performance.now() - started) / 1000;
  const after = pids.map(sampleProcess);
  const redisAfter = redisPids.length ? sampleProcesses(redisPids) : undefined;
  const selfAfter = sampleProcess(process.pid);
  const acked = recorder.acked;
  // Pushes still on their way: wait until deliveries stop growing (bounded).
  await settle(() => recorder.deliverMs.sameInstance.length + recorder.deliverMs.crossInstance.length);

  const metrics = await Promise.all(relays.map((r) => fetch(`${r.url}/metrics`).then((res) => res.text())));
  for (const d of devices) d.close();
  await stopAll();

  const perSpace = o.devices / o.spaces;
  const delivered = recorder.deliverMs.sameInstance.length + recorder.deliverMs.crossInstance.length;
  return {
    scenario,
    instances: relays.length,
    devices: devices.length,
    writers: writers.length,
    connectSeconds: round(connectSeconds),
    wallSeconds: round(wallSeconds),
    commitsAccepted: acked,
    commitsPerSecond: round(acked / wallSeconds),
    refused: recorder.refused,
    closedEarly: recorder.closedEarly,
    ackMs: summarize(recorder.ackMs),
    deliverMs: {
      all: summarize([...recorder.deliverMs.sameInstance, ...recorder.deliverMs.crossInstance]),
      sameInstance: summarize(recorder.deliverMs.sameInstance),
      crossInstance: summarize(recorder.deliverMs.crossInstance),
    },
    deliveries: delivered,
    deliveriesExpected: Math.round(acked * (perSpace - 1)),
    serverFanOutLagMeanMs: metrics.map((m) =>
      round(
        (1000 * metric(m, "shoal_fanout_lag_seconds_sum")) /
          Math.max(1, metric(m, "shoal_fanout_lag_seconds_count")),
      ),
    ),
    redisErrors: metrics.map((m) => sumOf(m, "shoal_redis_errors_total")),
    relayUsage: pids.map((_, i) => usage(before[i], after[i], wallSeconds)),
    redisUsage: redisBefore && redisAfter ? usage(redisBefore, redisAfter, wallSeconds) : undefined,
    loadGeneratorUsage: usage(selfBefore, selfAfter, wallSeconds),
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

/** Resolves once `value()` has not changed for 500 ms, or after 15 s. */
async function settle(value: () => number): Promise<void> {
  const deadline = Date.now() + 15_000;
  let last = value();
  let stableSince = Date.now();
  while (Date.now() < deadline && Date.now() - stableSince < 500) {
    await new Promise((r) => setTimeout(r, 50));
    const now = value();
    if (now !== last) {
      last = now;
      stableSince = Date.now();
    }
  }
}

function summarize(samples: number[]): Latency {
  if (samples.length === 0) return { count: 0, p50: 0, p99: 0 };
  const sorted = Float64Array.from(samples).sort();
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
  return { count: samples.length, p50: round(at(0.5)), p99: round(at(0.99)) };
}

function metric(text: string, name: string): number {
  const line = text.split("\n").find((l) => l.startsWith(name + " "));
  return line ? Number(line.slice(name.length + 1)) : 0;
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

function printTable(results: ScenarioResult[]): void {
  const rows = results.map((r) => ({
    scenario:
      r.scenario === "sqlite"
        ? "1 instance, sqlite"
        : `${r.instances} instances, ${r.scenario === "cluster" ? "Redis Cluster (3 masters)" : "Redis"}`,
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
  }));
  process.stdout.write("\n");
  console.table(rows);
}

async function cleanup(): Promise<void> {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
}

main().catch(async (e: unknown) => {
  process.stderr.write(`loadtest: ${e instanceof Error ? e.stack : String(e)}\n`);
  await cleanup();
  process.exit(1);
});
