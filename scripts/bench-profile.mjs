// `npm run bench:profile`: where the time of one bench step goes, from Chromium's own sampling profiler
// (CDP `Profiler`), on the bench page with N generated records. Issue 15 asks for the profile behind
// every row the bench shows short of its target; this prints it as a table of self time per function
// (and per bundle module), plus the wall time of the step, and writes the raw `.cpuprofile` under
// bench/results/ so it can be opened in Chromium's DevTools (Performance panel, "Load profile").
//
//   npm run bench:profile                              updates, sync paused, N = 10,000
//   npm run bench:profile -- --step live --n 1000      options: --step updates|live|insert|bootstrap|catchup|upload  --count <k>
//   npm run bench:profile -- --step bootstrap --n 1000 a second device joins and bootstraps N records
//                                                      (keys typed meanwhile); prints its longest tasks
//   npm run bench:profile -- --step bootstrap --snapshot  the same, from a snapshot the writer publishes first
//   npm run bench:profile -- --step upload --n 10000   N records inserted with sync off, then profiled while
//                                                      they upload (the bench's row); prints the frames'
//                                                      timeline and the relay process's CPU time
//   npm run bench:profile -- --step catchup --n 1000   that second device, bootstrapped, goes offline while
//                                                      the first makes 10 commits, then catches up (--count
//                                                      rounds, default 5, all profiled; each round's ms printed)
//
// It measures, it asserts nothing. Idle time (the main thread waiting on IndexedDB's backend) shows as
// "(idle)": a step whose wall time is mostly idle is bound by IndexedDB round trips, not by JavaScript.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { chromium } from "playwright-core";
import { buildBenchSite } from "./build.mjs";
import { CHROMIUM_ARGS, chromiumExecutable } from "./chromium.mjs";
import { startNode, stopNode } from "./node-child.mjs";

const root = fileURLToPath(new URL("..", import.meta.url));
const { values: opts } = parseArgs({
  options: {
    step: { type: "string", default: "updates" },
    n: { type: "string", default: "10000" },
    count: { type: "string" },
    top: { type: "string", default: "25" },
    snapshot: { type: "boolean", default: false },
  },
});
const N = Number(opts.n);
const STEP = opts.step;
const SEED = 20261125;

let second;
const work = mkdtempSync(join(tmpdir(), "shoal-profile-"));
// Unminified, so the profile names functions as the sources do.
await buildBenchSite({ minify: false });
const relay = await startNode(
  root,
  [
    "--conditions=shoal-source",
    "--import",
    "tsx",
    "sync-server/src/cli.ts",
    "--port",
    "0",
    "--store",
    "sqlite",
    "--data",
    join(work, "relay"),
    "--static",
    "dist/bench-site",
    "--quiet",
  ],
  "relay",
);
const context = await chromium.launchPersistentContext(join(work, "profile"), {
  executablePath: chromiumExecutable(),
  args: [...CHROMIUM_ARGS],
  headless: true,
  bypassCSP: true,
});
try {
  const page = context.pages()[0] ?? (await context.newPage());
  page.on("pageerror", (e) => console.error(`page error: ${e.message}`));
  await page.goto(`${relay.info.url}/`);
  await page.waitForFunction(() => window.__benchReady === true, null, { timeout: 30_000 });
  const call = (fn, args) => page.evaluate(([f, a]) => window.__bench[f](a), [fn, args ?? {}]);
  await call("shoalOpen");
  await call("shoalCreateSpace");
  const measured = STEP === "insert";
  if (!measured) await call("shoalInsert", { n: N, seed: SEED, batch: 100 });
  let target = page;
  let callOn = call;
  let bootArgs;
  if (STEP === "bootstrap" || STEP === "catchup") {
    // The writer uploads, then a second page (its own IndexedDB: another origin's storage is not
    // shared, so a second persistent context) joins and is profiled while it bootstraps.
    await call("shoalUpload", { relay: relay.info.url.replace(/^http/, "ws"), timeoutMs: 600_000 });
    // --snapshot: the writer publishes a snapshot first, so the second device bootstraps from it.
    if (opts.snapshot) console.log(`snapshot stored: ${await call("shoalPublishSnapshot")}`);
    const link = await call("shoalInvite");
    second = await chromium.launchPersistentContext(join(work, "profile-b"), {
      executablePath: chromiumExecutable(),
      args: [...CHROMIUM_ARGS],
      headless: true,
      bypassCSP: true,
    });
    target = second.pages()[0] ?? (await second.newPage());
    target.on("pageerror", (e) => console.error(`page error (b): ${e.message}`));
    await target.goto(`${relay.info.url}/`);
    await target.waitForFunction(() => window.__benchReady === true, null, { timeout: 30_000 });
    callOn = (fn, args) => target.evaluate(([f, a]) => window.__bench[f](a), [fn, args ?? {}]);
    await callOn("shoalOpen");
    bootArgs = { relay: relay.info.url.replace(/^http/, "ws"), link, n: N, timeoutMs: 600_000 };
    if (STEP === "catchup") await callOn("shoalBootstrap", bootArgs);
  }

  const cdp = await (target === page ? context : second).newCDPSession(target);
  await cdp.send("Profiler.enable");
  await cdp.send("Profiler.setSamplingInterval", { interval: 100 });
  // The browser's own task boundaries (RunTask), to say which functions each long task ran.
  const trace = [];
  cdp.on("Tracing.dataCollected", (e) => trace.push(...e.value));
  const traced = new Promise((r) => cdp.once("Tracing.tracingComplete", r));
  await cdp.send("Tracing.start", {
    categories: "toplevel,disabled-by-default-devtools.timeline",
    transferMode: "ReportEvents",
  });
  await cdp.send("Profiler.start");
  const relayCpu0 = cpuMs(relay.child.pid);
  const t0 = Date.now();
  const result =
    STEP === "upload"
      ? await call("shoalUpload", { relay: relay.info.url.replace(/^http/, "ws"), timeoutMs: 600_000 })
      : STEP === "bootstrap"
      ? await typing(target, callOn("shoalBootstrap", bootArgs))
      : STEP === "catchup"
        ? await catchUpRounds(call, callOn, Number(opts.count ?? 5))
      : STEP === "insert"
        ? await call("shoalInsert", { n: N, seed: SEED, batch: 100 })
        : STEP === "live"
          ? await call("shoalLive", { count: Number(opts.count ?? 40) })
          : await call("shoalUpdates", { count: Number(opts.count ?? 200), seed: SEED + 1 });
  const wall = Date.now() - t0;
  const relayCpu = cpuMs(relay.child.pid) - relayCpu0;
  const { profile } = await cdp.send("Profiler.stop");
  await cdp.send("Tracing.end");
  await traced;

  const out = join(root, "bench", "results");
  mkdirSync(out, { recursive: true });
  const file = join(out, `profile-${STEP}-${N}-${new Date().toISOString().replace(/[:.]/g, "-")}.cpuprofile`);
  writeFileSync(file, JSON.stringify(profile));
  console.log(`step ${STEP}, N = ${N}: ${wall} ms wall`);
  if (result.responsiveness) console.log(`page saw: ${JSON.stringify(result.responsiveness)}`);
  if (result.rounds) console.log(`catch-up rounds, ms: ${result.rounds.map((r) => r.toFixed(1)).join(", ")}`);
  if (STEP === "upload") {
    printFrames(result, await call("shoalFrameLog"), relayCpu);
    // The relay's own view: time from a frame's arrival to its ack, and any throttling it applied.
    const metrics = await fetch(`${relay.info.url}/metrics`).then((r) => r.text(), () => "");
    const lines = metrics
      .split("\n")
      .filter((l) => /^shoal_(ack_latency_seconds_(sum|count)|refusals_total|store_batch_commits_(sum|count))/.test(l));
    console.log(`relay metrics: ${lines.join("; ") || "(none)"}`);
  }
  if (result.p50 !== undefined)
    console.log(`p50 ${result.p50.toFixed(2)} ms, p99 ${result.p99.toFixed(2)} ms`);
  printSelfTime(profile, Number(opts.top));
  printLongTasks(profile, trace, 8);
  console.log(`profile: ${file}`);
} finally {
  await second?.close().catch(() => {});
  await context.close().catch(() => {});
  await stopNode(relay);
  rmSync(work, { recursive: true, force: true });
}

/**
 * Catch-up rounds as the bench runs them: the writer syncs and uploads, the second device takes it all
 * and stops syncing, the writer makes 10 commits and uploads them, the second device comes back.
 */
async function catchUpRounds(call, callOn, rounds) {
  const ws = relay.info.url.replace(/^http/, "ws");
  await call("shoalStartSync", { relay: ws });
  const out = [];
  for (let k = 0; k < rounds; k++) {
    await call("shoalWaitUploaded", { timeoutMs: 600_000 });
    await callOn("shoalWaitVector", { vector: await call("shoalVector"), timeoutMs: 600_000 });
    await callOn("shoalStopSync");
    const edits = await call("shoalOfflineEdits", { count: 10, timeoutMs: 600_000 });
    const cu = await callOn("shoalCatchUp", { relay: ws, ids: edits.ids, markers: edits.markers, timeoutMs: 600_000 });
    out.push(cu.ms);
  }
  return { rounds: out };
}

/** User + system CPU time of a process so far, in ms (Linux `/proc`; 0 where it cannot be read). */
function cpuMs(pid) {
  try {
    // Fields after the command name's closing parenthesis: utime and stime are the 12th and 13th.
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return ((Number(f[11]) + Number(f[12])) * 1000) / 100;
  } catch {
    return 0;
  }
}

/**
 * Where an upload's wall time went, from the page's frames: until the first frame (connect, hello), the
 * welcome, the first and last commits frame sent, the last frame received (the last ack), and the
 * most commits frames in flight (sent, not yet answered by a received frame) at once.
 */
function printFrames(result, frames, relayCpu) {
  const sent = frames.filter(([, , d]) => d === "s");
  const recv = frames.filter(([, , d]) => d === "r");
  const big = sent.filter(([, b]) => b > 4096);
  let open = 0;
  let most = 0;
  for (const [, b, d] of frames) {
    if (d === "s" && b > 4096) most = Math.max(most, ++open);
    else if (d === "r") open = Math.max(0, open - 1);
  }
  const at = (f) => (f ? `${f[0].toFixed(0)} ms` : "-");
  console.log(
    `upload: ${result.ms.toFixed(0)} ms in the page, ${(result.sent / 1e6).toFixed(2)} MB sent, ` +
      `${(result.received / 1e3).toFixed(1)} KB received; relay process CPU ${relayCpu.toFixed(0)} ms`,
  );
  console.log(
    `frames: ${sent.length} sent (${big.length} over 4 KB), ${recv.length} received; first sent ${at(sent[0])}, ` +
      `first received ${at(recv[0])}, first large sent ${at(big[0])}, last large sent ${at(big.at(-1))}, ` +
      `last received ${at(recv.at(-1))}; most large frames before an answer: ${most}`,
  );
  if (frames.length <= 80)
    console.log(`timeline: ${frames.map(([t, b, d]) => `${d}${(b / 1024).toFixed(0)}K@${t.toFixed(0)}`).join(" ")}`);
  const gaps = big.slice(1).map((f, i) => f[0] - big[i][0]);
  if (gaps.length)
    console.log(
      `gaps between large frames sent, ms: median ${gaps.sort((a, b) => a - b)[gaps.length >> 1].toFixed(1)}, max ${gaps.at(-1).toFixed(1)}`,
    );
}

/** Self time per function and per module (source file) of a CPU profile, largest first. */
function printSelfTime(profile, top) {
  const byNode = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map();
  const deltas = profile.timeDeltas;
  profile.samples.forEach((id, i) => {
    self.set(id, (self.get(id) ?? 0) + (deltas[i + 1] ?? 0) / 1000);
  });
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  const fn = new Map();
  const mod = new Map();
  for (const [id, ms] of self) {
    const { functionName, url, lineNumber } = byNode.get(id).callFrame;
    const file = url ? url.replace(/^.*\//, "").replace(/\?.*$/, "") : "";
    const name = `${functionName || "(anonymous)"}${file ? ` ${file}:${lineNumber + 1}` : ""}`;
    fn.set(name, (fn.get(name) ?? 0) + ms);
    const m = file || functionName || "(other)";
    mod.set(m, (mod.get(m) ?? 0) + ms);
  }
  const show = (title, map, k) => {
    console.log(`\n${title} (ms, % of ${total.toFixed(0)} ms sampled)`);
    for (const [name, ms] of [...map].sort((a, b) => b[1] - a[1]).slice(0, k)) {
      console.log(`  ${ms.toFixed(1).padStart(9)}  ${((100 * ms) / total).toFixed(1).padStart(5)}%  ${name}`);
    }
  };
  show("self time by module", mod, 12);
  show("self time by function", fn, top);
  // Inclusive time: a sample counts for every distinct function on its stack, so the rows say which
  // operation (saving, sealing, the IndexedDB transaction) the time is spent under.
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const incl = new Map();
  for (const [id, ms] of self) {
    const seen = new Set();
    for (let cur = id; cur !== undefined; cur = parent.get(cur)) {
      const { functionName, url } = byNode.get(cur).callFrame;
      if (!functionName || !url) continue;
      const name = `${functionName} ${url.replace(/^.*\//, "").replace(/\?.*$/, "")}`;
      if (seen.has(name)) continue;
      seen.add(name);
      incl.set(name, (incl.get(name) ?? 0) + ms);
    }
  }
  show("inclusive time by function", incl, top);
}

/** Presses keys in the page's search box every 200 ms while `running` lasts (as scripts/bench.mjs). */
async function typing(page, running) {
  let done = false;
  const finished = running.finally(() => (done = true));
  const keys = ["m", "a", "r", "g", "Backspace", "Backspace", "Backspace", "Backspace"];
  // The box lives only while the step runs: a step that ends before it is seen must not leave a
  // 30 s wait for it in the step's wall time (the "30 s idle" of some bootstrap profiles).
  await Promise.race([page.waitForSelector("#bench-search", { timeout: 30_000 }).catch(() => {}), finished]);
  for (let k = 0; !done; k++) {
    // Short: the box is gone once the step ended, and Playwright's default would wait 30 s for it.
    await page.focus("#bench-search", { timeout: 1_000 }).catch(() => {});
    await page.keyboard.press(keys[k % keys.length]).catch(() => {});
    await new Promise((r) => setTimeout(r, 200));
  }
  return finished;
}

/**
 * The page's longest tasks (the browser's RunTask events on its main thread, as the Long Tasks API sees
 * them), each with the functions the sampling profiler saw during it, by time inclusive of callees.
 */
function printLongTasks(profile, trace, k) {
  const names = trace.filter(
    (e) => e.ph === "M" && e.name === "thread_name" && e.args?.name === "CrRendererMain",
  );
  const tasks = trace.filter(
    (e) => e.name === "RunTask" && e.ph === "X" && names.some((t) => t.pid === e.pid && t.tid === e.tid),
  );
  const byNode = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const at = [];
  let t = profile.startTime;
  profile.samples.forEach((id, i) => {
    t += profile.timeDeltas[i] ?? 0;
    at.push([t, id, (profile.timeDeltas[i + 1] ?? 0) / 1000]);
  });
  const long = tasks.filter((e) => e.dur >= 50_000).sort((a, b) => b.dur - a.dur);
  const over = (ms) => tasks.filter((e) => e.dur >= ms * 1000).length;
  console.log(
    `\ntasks on the main thread: ${tasks.length}; of 50 ms or more: ${over(50)}, 30 ms or more: ${over(30)}`,
  );
  for (const task of long.slice(0, k)) {
    const incl = new Map();
    for (const [ts, id, ms] of at) {
      if (ts < task.ts || ts > task.ts + task.dur) continue;
      const seen = new Set();
      for (let c = id; c !== undefined; c = parent.get(c)) {
        const { functionName, url } = byNode.get(c).callFrame;
        if (url && /import-wrapper|dexie/.test(url)) continue; // Dexie's plumbing is under every call
        const name = url ? `${functionName || "(anonymous)"} ${url.replace(/^.*\//, "")}` : functionName;
        if (!name || name === "(root)" || seen.has(name)) continue;
        seen.add(name);
        incl.set(name, (incl.get(name) ?? 0) + ms);
      }
    }
    const top = [...incl]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 12)
      .map(([n, ms]) => `${n} ${ms.toFixed(0)}`);
    console.log(`  ${(task.dur / 1000).toFixed(1)} ms: ${top.join(" | ")}`);
  }
}
