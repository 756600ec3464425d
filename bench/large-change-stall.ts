// Issue 12, item 7: how long one large change holds a receiver's page (docs/RELIABILITY.md, "Large
// changes"). Two receivers' worth of work per scenario, on real databases (fake-indexeddb in Node):
// a writer makes the write, a receiver applies its commit with `db.applyCommits`, and a heartbeat of
// `setTimeout(0)` records the longest gap between two event-loop turns (the stall) during the apply.
// Also prints the raw cost of one `A.applyChanges` call of N operations, by kind (how the cap was
// chosen). Prints medians (and ranges) over --runs runs after one warm-up run; asserts nothing.
//
//   node --conditions=shoal-source --import tsx bench/large-change-stall.ts [--runs 7]
//
// It reads the cap from the tree it runs in (`DEFAULT_CONTENT_LIMITS.maxOpsPerChange`), so the same
// script measures a tree from before the cap was lowered (a `git worktree` of it, node_modules linked).
import "fake-indexeddb/auto";
import * as A from "@automerge/automerge";
import { openDatabase, type Database } from "../client/src/index.ts";
import { DEFAULT_CONTENT_LIMITS } from "../client/src/protocol/limits.ts";
import type { Commit } from "../client/src/replica/commit.ts";

type P = { name: string; notes: string; extra?: Record<string, unknown> };
type Db = Database<{ patients: P }>;
const CAP = DEFAULT_CONTENT_LIMITS.maxOpsPerChange;
const KEYS = DEFAULT_CONTENT_LIMITS.maxKeysPerObject;
const argRuns = process.argv.indexOf("--runs");
const RUNS = argRuns >= 0 ? Number(process.argv[argRuns + 1]) : 7;

let n = 0;
async function open(): Promise<Db> {
  return openDatabase<{ patients: P }>({
    name: `stall-bench-${process.pid}-${n++}`,
    collections: { patients: { indexes: "id, name", text: ["notes"] } },
    persist: false,
  });
}

/** `keys` keys spread over nested maps of at most `KEYS` each (the per-object limit). */
function spread(keys: number, v: number): Record<string, Record<string, number>> {
  const out: Record<string, Record<string, number>> = {};
  for (let i = 0; i < keys; i++) (out[`m${Math.floor(i / KEYS)}`] ??= {})[`k${i}`] = i + v;
  return out;
}

/** Runs `apply` with a heartbeat; returns the longest gap between two beats (ms) and the total (ms). */
async function stall(apply: () => Promise<unknown>): Promise<{ stall: number; total: number }> {
  let last = performance.now();
  let longest = 0;
  let on = true;
  const beat = () => {
    const now = performance.now();
    longest = Math.max(longest, now - last);
    last = now;
    if (on) setTimeout(beat, 0);
  };
  setTimeout(beat, 0);
  const t0 = performance.now();
  await apply();
  const total = performance.now() - t0;
  on = false;
  longest = Math.max(longest, performance.now() - last);
  return { stall: longest, total };
}

/** A writer and a receiver of one space holding one record `id` as an Automerge document. */
async function pair(): Promise<{ a: Db; b: Db; id: string; space: { id: string } }> {
  const a = await open();
  const b = await open();
  const space = await a.createSpace({ name: "Bench" });
  await b.join(await a.invite(space, "https://app.example/"));
  const id = await a.patients.insert({ name: "R", notes: "" }, { space });
  await a.patients.update(id, (p) => void (p.name = "R built"));
  await b.applyCommits(await a.exportCommits({}));
  return { a, b, id, space };
}

type Outcome = { stall: number; total: number; note: string };

/** One change of `ops` operations (new keys in nested maps), made without Shoal's writer. */
async function oneMaximalChange(ops: number): Promise<Outcome> {
  const { a, b, id, space } = await pair();
  const since = await a.vector([space.id as never]);
  const loaded = (await a.replica.loadForEdit(id as never))!;
  // `extra` itself and each nested map are one operation each; the keys are the rest.
  const maps = Math.ceil((ops - 1) / (KEYS + 1));
  const doc = A.change(A.clone(loaded.doc, { actor: a.replica.actor }), (d: Record<string, unknown>) => {
    const x = spread(ops - 1 - maps, 0);
    d.extra = {};
    for (const [k, m] of Object.entries(x)) (d.extra as Record<string, unknown>)[k] = m;
  });
  const change = A.getLastLocalChange(doc)!;
  await a.patients.update(id as never, (p) => void (p.name = "envelope"));
  const [env] = await a.exportCommits(since);
  const forged: Commit = { ...env!, changes: [{ ...env!.changes[0]!, changes: [change], paths: ["extra"] }] };
  let report: Awaited<ReturnType<Db["applyCommits"]>> | undefined;
  const r = await stall(async () => (report = await b.applyCommits([forged])));
  const note = report!.applied.length === 1 ? "applied" : `refused (${report!.rejected[0]?.error.message})`;
  await a.close();
  await b.close();
  return { ...r, note };
}

/** An honest update of `keys` keys (in nested maps) through Shoal's writer, applied by a receiver. */
async function honestWrite(keys: number): Promise<Outcome> {
  const { a, b, id, space } = await pair();
  const since = await a.vector([space.id as never]);
  try {
    await a.patients.update(id as never, (p) => void (p.extra = spread(keys, 1)));
  } catch (e) {
    await a.close();
    await b.close();
    return { stall: NaN, total: NaN, note: `writer refused it (${(e as Error).message})` };
  }
  const [commit] = await a.exportCommits(since);
  const changes = commit!.changes.reduce((s, rc) => s + rc.changes.length, 0);
  let report: Awaited<ReturnType<Db["applyCommits"]>> | undefined;
  const r = await stall(async () => (report = await b.applyCommits([commit!])));
  const note = `${changes} change(s), ${report!.applied.length === 1 ? "applied" : "refused"}`;
  await a.close();
  await b.close();
  return { ...r, note };
}

/** The cost of one `A.applyChanges` call holding one change of `ops` operations of a kind. */
function rawApply(kind: "new keys" | "text append" | "overwrite 10k-key map", ops: number): Outcome {
  let base = A.init<Record<string, unknown>>();
  if (kind === "overwrite 10k-key map")
    base = A.change(
      base,
      (d) => void (d.m = Object.fromEntries(Array.from({ length: KEYS }, (_, i) => [`k${i}`, 0]))),
    );
  if (kind === "text append") base = A.change(base, (d) => void (d.t = ""));
  const made = A.change(A.clone(base), (d) => {
    if (kind === "new keys") for (let i = 0; i < ops; i++) d[`k${i}`] = i;
    else if (kind === "text append") A.splice(d, ["t"], 0, 0, "x".repeat(ops));
    else for (let i = 0; i < ops; i++) (d.m as Record<string, number>)[`k${(i * 7919) % KEYS}`] = i + 1;
  });
  const change = A.getLastLocalChange(made)!;
  const target = A.clone(base);
  const t0 = performance.now();
  A.applyChanges(target, [change]);
  const ms = performance.now() - t0;
  return { stall: ms, total: ms, note: "" };
}

async function measure(label: string, once: () => Promise<Outcome> | Outcome): Promise<void> {
  await once(); // warm-up
  const runs: Outcome[] = [];
  for (let i = 0; i < RUNS; i++) runs.push(await once());
  const stalls = runs.map((r) => r.stall).sort((x, y) => x - y);
  const totals = runs.map((r) => r.total).sort((x, y) => x - y);
  const med = (xs: number[]) => xs[Math.floor(xs.length / 2)]!;
  const f = (x: number) => (Number.isNaN(x) ? "-" : x.toFixed(1));
  console.log(
    `${label.padEnd(52)} stall median ${f(med(stalls)).padStart(7)} ms (${f(stalls[0]!)}-${f(stalls.at(-1)!)})` +
      `  total median ${f(med(totals)).padStart(7)} ms  ${runs[0]!.note}`,
  );
}

console.log(`MAX_OPS_PER_CHANGE = ${CAP}; ${RUNS} runs after a warm-up; node ${process.version}`);
for (const kind of ["new keys", "text append", "overwrite 10k-key map"] as const)
  for (const ops of [512, 2_048, 16_384])
    await measure(`A.applyChanges, one change of ${ops} ops: ${kind}`, () => rawApply(kind, ops));
await measure(`receiver: one change at the cap (${CAP} ops)`, () => oneMaximalChange(CAP));
await measure("receiver: one crafted change of 16,384 ops", () => oneMaximalChange(16_384));
await measure("receiver: one crafted change of 40,000 ops", () => oneMaximalChange(40_000));
await measure("receiver: honest update of 16,000 keys", () => honestWrite(16_000));
await measure("receiver: honest update of 40,000 keys", () => honestWrite(40_000));
