// Draws every bench row (scenario) against N as an SVG: Shoal, the peer (automerge-repo) and the raw
// limit as series, N on a log axis, the value on a log axis when it spans a factor of 10 or more.
// One SVG per scenario rather than one sheet of small multiples: the README embeds the few that
// matter at a readable size, each can be linked on its own, and a new scenario needs no layout.
// `npm run bench` writes them beside its JSON (<result>-<scenario>.svg) and into bench/charts/;
// `node scripts/bench-chart.mjs bench/results/<file>.json [more.json ...]` redraws bench/charts/ from
// earlier results (rows merged, the first file's figure winning), `--out <dir>` elsewhere.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { parseArgs } from "node:util";
import { pathToFileURL } from "node:url";
import { SCENARIOS } from "./bench-scenarios.mjs";

export const SERIES = [
  { system: "shoal", label: "Shoal", color: "#0f766e" },
  { system: "automerge-repo", label: "automerge-repo", color: "#b45309" },
  { system: "raw", label: "raw limit (Dexie, bare WebSocket)", color: "#475569" },
];

const METRICS = ["ms", "heapMB", "rssMB"];
const W = 640;
const L = 76;
const R = 20;
const B = 100;
/** Plot height; the subtitle's lines add to the whole. */
const PLOT = 262;

const esc = (s) => String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
const num = (v) => String(Number(v.toPrecision(6)));
const px = (v) => Math.round(v * 10) / 10;

/** The field of a row that carries the scenario's figure: known scenarios first, else the row's own. */
function metricOf(scenario, rows) {
  const known = SCENARIOS.find((s) => s.id === scenario)?.metric;
  if (known) return known;
  return METRICS.find((m) => rows.some((r) => m in r)) ?? "ms";
}

const figure = (row, metric) =>
  typeof row[metric] === "number" && Number.isFinite(row[metric]) && row[metric] >= 0 ? row[metric] : null;

function tickLabel(v, metric) {
  if (metric !== "ms") return `${num(v)} MB`;
  return v >= 1000 ? `${num(v / 1000)} s` : `${num(v)} ms`;
}

/** Maps [lo, hi] (in log10 units when `log`) onto the pixel range [from, to]. */
function axis(lo, hi, from, to, log) {
  return (v) => from + (((log ? Math.log10(v) : v) - lo) / (hi - lo)) * (to - from);
}

function niceStep(rough) {
  const p = 10 ** Math.floor(Math.log10(rough));
  return [1, 2, 5, 10].map((k) => k * p).find((s) => s >= rough) ?? 10 * p;
}

/**
 * The y axis: logarithmic when every value is positive and the largest is 10 or more times the
 * smallest (a ratio such as Shoal against the peer stays readable there), linear from 0 otherwise.
 */
function yAxis(values, force, top, bottom) {
  const min = Math.min(...values);
  const max = Math.max(...values);
  const log = force ? force === "log" && min > 0 : min > 0 && max / min >= 10;
  if (log) {
    const lo = Math.floor(Math.log10(min));
    const hi = Math.max(lo + 1, Math.ceil(Math.log10(max)));
    const ticks = Array.from({ length: hi - lo + 1 }, (_, i) => 10 ** (lo + i));
    return { scale: "log", at: axis(lo, hi, bottom, top, true), ticks };
  }
  const step = max > 0 ? niceStep(max / 5) : 1;
  const hi = Math.max(step, Math.ceil(max / step) * step);
  const ticks = Array.from({ length: Math.round(hi / step) + 1 }, (_, i) => i * step);
  return { scale: "linear", at: axis(0, hi, bottom, top, false), ticks };
}

function missingReason(row) {
  const note = row.note ?? "";
  return /timeout/.test(note) ? "timeout" : /skipped/.test(note) ? "skipped" : "failed";
}

/**
 * One scenario against N as an SVG document. Rows of other scenarios are ignored; a system without
 * rows is named in the legend as not measured, one whose rows carry no figure (timeout, skipped)
 * with the sizes it lacks. Several runs of a point (`row.samples`) draw a bar from the fastest to the
 * slowest. `data-` attributes name the scales and each point's system, for tests and for tools.
 *
 * @param {{ scenario: string, n: number, system: string, ms?: number | null, heapMB?: number | null, rssMB?: number | null, samples?: number[], note?: string }[]} rows
 * @param {string} scenario
 * @param {{ title?: string, subtitle?: string, yScale?: "log" | "linear" }} [options]
 * @returns {string}
 */
export function scenarioChart(rows, scenario, options = {}) {
  const mine = rows.filter((r) => r.scenario === scenario);
  const metric = metricOf(scenario, mine);
  const label = SCENARIOS.find((s) => s.id === scenario)?.label ?? scenario;
  const title = options.title ?? `${label[0].toUpperCase()}${label.slice(1)}`;
  const points = mine.filter((r) => figure(r, metric) !== null);
  const subtitle = options.subtitle ? options.subtitle.split("\n") : [];
  const T = 44 + 14 * subtitle.length;
  const H = T + PLOT + B;
  const head = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12" data-scenario="${esc(scenario)}"`,
  ];
  const titles = [
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${L}" y="24" font-size="15" font-weight="bold">${esc(title)}</text>`,
    ...subtitle.map(
      (line, i) => `<text x="${L}" y="${42 + 14 * i}" font-size="11" fill="#475569">${esc(line)}</text>`,
    ),
  ];
  if (points.length === 0) {
    return `${head[0]} data-x-scale="log" data-y-scale="none">\n${titles.join("\n")}\n<text x="${L}" y="${T + 40}">No figures for this scenario in these runs.</text>\n</svg>\n`;
  }
  const ns = [...new Set(mine.map((r) => r.n))].sort((a, b) => a - b);
  const spread = (r) =>
    Array.isArray(r.samples) ? r.samples.filter((s) => Number.isFinite(s) && s >= 0) : [];
  const y = yAxis(
    points.flatMap((r) => [figure(r, metric), ...spread(r)]),
    options.yScale,
    T,
    H - B,
  );
  const usable = (v) => y.scale === "linear" || v > 0;
  const pad = ns.length > 1 ? 0.2 : 0.5;
  const x = axis(Math.log10(ns[0]) - pad, Math.log10(ns.at(-1)) + pad, L, W - R, true);
  const out = [`${head[0]} data-x-scale="log" data-y-scale="${y.scale}">`, ...titles];
  for (const t of y.ticks)
    out.push(
      `<line x1="${L}" x2="${W - R}" y1="${px(y.at(t))}" y2="${px(y.at(t))}" stroke="#e2e8f0"/>`,
      `<text x="${L - 8}" y="${px(y.at(t) + 4)}" text-anchor="end">${tickLabel(t, metric)}</text>`,
    );
  for (const n of ns)
    out.push(
      `<text x="${px(x(n))}" y="${H - B + 18}" text-anchor="middle">N = ${n.toLocaleString("en-US")}</text>`,
    );
  out.push(
    `<text x="${W - R}" y="${H - B + 34}" text-anchor="end" font-size="10" fill="#64748b">N: log scale; value: ${y.scale} scale</text>`,
  );
  SERIES.forEach((series, i) => {
    const own = mine.filter((r) => r.system === series.system);
    const pts = own
      .filter((r) => figure(r, metric) !== null && usable(figure(r, metric)))
      .sort((a, b) => a.n - b.n);
    if (pts.length > 1)
      out.push(
        `<polyline fill="none" stroke="${series.color}" stroke-width="2.5" data-system="${series.system}" points="${pts.map((p) => `${px(x(p.n))},${px(y.at(figure(p, metric)))}`).join(" ")}"/>`,
      );
    for (const p of pts) {
      const runs = spread(p).filter(usable);
      if (runs.length > 1)
        out.push(
          `<line x1="${px(x(p.n))}" x2="${px(x(p.n))}" y1="${px(y.at(Math.min(...runs)))}" y2="${px(y.at(Math.max(...runs)))}" stroke="${series.color}" stroke-width="1" opacity="0.6"/>`,
        );
      const v = figure(p, metric);
      out.push(
        `<circle cx="${px(x(p.n))}" cy="${px(y.at(v))}" r="4" fill="${series.color}" data-system="${series.system}" data-n="${p.n}"><title>${esc(series.label)}, N = ${p.n}: ${tickLabel(v, metric)}${runs.length > 1 ? ` (median of ${runs.length} runs)` : ""}</title></circle>`,
      );
    }
    const lacking = own
      .filter((r) => figure(r, metric) === null)
      .sort((a, b) => a.n - b.n)
      .map((r) => `${r.n.toLocaleString("en-US")} (${missingReason(r)})`);
    const reasons = new Set(own.filter((r) => figure(r, metric) === null).map(missingReason));
    const status =
      own.length === 0
        ? " (not measured in these runs)"
        : lacking.length === own.length && reasons.size === 1
          ? ` (${[...reasons][0]}: no figure)`
          : lacking.length
            ? ` (no figure at N = ${lacking.join(", ")})`
            : "";
    const ly = H - B + 52 + i * 15;
    out.push(
      `<rect x="${L}" y="${ly - 9}" width="12" height="4" fill="${series.color}"/>`,
      `<text x="${L + 18}" y="${ly - 4}">${esc(series.label + status)}</text>`,
    );
  });
  out.push("</svg>");
  return `${out.join("\n")}\n`;
}

/**
 * Every scenario found in `rows`, in the bench's order (unknown ones after), charted.
 *
 * @example
 * for (const { scenario, svg } of benchCharts(result.rows)) writeFileSync(`${scenario}.svg`, svg);
 */
export function benchCharts(rows, options = {}) {
  const present = [...new Set(rows.map((r) => r.scenario))];
  const order = [
    ...SCENARIOS.map((s) => s.id).filter((id) => present.includes(id)),
    ...present.filter((id) => !SCENARIOS.some((s) => s.id === id)),
  ];
  return order.map((scenario) => ({ scenario, svg: scenarioChart(rows, scenario, options) }));
}

/** Writes `benchCharts(rows)` as `<dir>/<prefix><scenario>.svg`; returns the paths. */
export function writeBenchCharts(rows, dir, { prefix = "", ...options } = {}) {
  mkdirSync(dir, { recursive: true });
  return benchCharts(rows, options).map(({ scenario, svg }) => {
    const file = join(dir, `${prefix}${scenario}.svg`);
    writeFileSync(file, svg);
    return file;
  });
}

/**
 * Rows of several results as one set: for each (scenario, n, system) the first result's figure wins,
 * and a row without a figure (timeout, skipped) only when no result has one.
 *
 * @example
 * const rows = mergeRows([idleRun.rows, olderRun.rows]);
 */
export function mergeRows(rowSets) {
  const picked = new Map();
  for (const r of rowSets.flat()) {
    const k = `${r.scenario}|${r.n}|${r.system}`;
    const had = picked.get(k);
    const metric = metricOf(r.scenario, [r]);
    if (!had || (figure(had, metric) === null && figure(r, metric) !== null)) picked.set(k, r);
  }
  return [...picked.values()];
}

/**
 * A chart subtitle naming a run: when, and how loaded the machine was if the result recorded it
 * (`load.run`, added with the load figures; older results have none, and get the date alone).
 */
export function describeRun(result, name = "") {
  const when = typeof result.at === "string" ? result.at.slice(0, 16).replace("T", " ") : name;
  const load = result.load?.run;
  if (!load || load.samples === 0) return when;
  return `${when} (load ${load.median} median, ${load.max} max on ${load.cpus} cores${load.loaded ? ": LOADED" : ""})`;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const { values, positionals: files } = parseArgs({
    allowPositionals: true,
    options: { out: { type: "string", default: "bench/charts" } },
  });
  if (files.length === 0) {
    console.error(
      "usage: node scripts/bench-chart.mjs [--out bench/charts] <result.json> [more.json ...] (rows are merged)",
    );
    process.exit(2);
  }
  const runs = [];
  const results = [];
  for (const f of files) {
    const result = JSON.parse(readFileSync(f, "utf8"));
    if (!Array.isArray(result.rows)) {
      console.error(`${f}: no rows (an earlier result format), skipped`);
      continue;
    }
    runs.push(describeRun(result, basename(f, ".json")));
    results.push(result.rows);
  }
  const rows = mergeRows(results);
  // Run descriptions packed into lines of at most about 100 characters (the chart's width).
  const lines = [];
  for (const [i, run] of runs.entries()) {
    const text = i === 0 ? `${runs.length > 1 ? "runs" : "run"} of ${run}` : run;
    if (lines.length && lines.at(-1).length + text.length + 2 <= 100) lines[lines.length - 1] += `; ${text}`;
    else lines.push(text);
  }
  const unknown = files.length > 0 && runs.some((r) => !r.includes("(load"));
  const subtitle = lines.join("\n") + (unknown ? "\n(load average not recorded before 2026-12-07)" : "");
  const written = writeBenchCharts(rows, values.out, { subtitle });
  console.log(`wrote ${written.length} charts into ${values.out}/`);
}
