import { mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  benchCharts,
  describeRun,
  mergeRows,
  scenarioChart,
  writeBenchCharts,
  type BenchRow,
} from "./bench-chart.mjs";

const row = (system: string, n: number, ms: number | null, extra: Partial<BenchRow> = {}): BenchRow => ({
  scenario: "bootstrap",
  n,
  system,
  runs: ms === null ? 0 : 1,
  ms,
  ...extra,
});

/** The points drawn for one system, as [n, cy] pairs. */
function points(svg: string, system: string): [number, number][] {
  return [
    ...svg.matchAll(
      /<circle cx="[^"]+" cy="([^"]+)" r="4" fill="[^"]+" data-system="([^"]+)" data-n="(\d+)"/g,
    ),
  ]
    .filter((m) => m[2] === system)
    .map((m) => [Number(m[3]), Number(m[1])]);
}
const attr = (svg: string, name: string) => new RegExp(`${name}="([^"]+)"`).exec(svg)?.[1];

describe("scenarioChart", () => {
  const full = [1_000, 10_000, 100_000].flatMap((n) => [
    row("shoal", n, n / 2),
    row("raw", n, n / 10),
    row("automerge-repo", n, n * 5),
  ]);

  it("draws one series per system with one point per size", () => {
    const svg = scenarioChart(full, "bootstrap");
    for (const system of ["shoal", "raw", "automerge-repo"]) {
      expect(points(svg, system).map(([n]) => n)).toEqual([1_000, 10_000, 100_000]);
      expect(svg).toContain(`<polyline fill="none" stroke="`);
      expect(svg.match(new RegExp(`<polyline[^>]*data-system="${system}"`, "g"))).toHaveLength(1);
    }
  });

  it("puts slower figures higher on the chart", () => {
    const svg = scenarioChart(full, "bootstrap");
    const shoal = points(svg, "shoal").map(([, y]) => y);
    expect(shoal[0]).toBeGreaterThan(shoal[1]!);
    expect(shoal[1]).toBeGreaterThan(shoal[2]!);
    // The peer (10x Shoal) sits above Shoal at every size.
    points(svg, "automerge-repo").forEach(([, y], i) => expect(y).toBeLessThan(shoal[i]!));
  });

  it("uses log scales when the values span decades, with evenly spaced decades", () => {
    const svg = scenarioChart(full, "bootstrap");
    expect(attr(svg, "data-x-scale")).toBe("log");
    expect(attr(svg, "data-y-scale")).toBe("log");
    // 500 ms, 5 s, 50 s: a factor of 10 each, so equal steps on a log axis.
    const [a, b, c] = points(svg, "shoal").map(([, y]) => y);
    expect(a! - b!).toBeCloseTo(b! - c!, 0);
    // From the raw limit's 100 ms to the peer's 500 s: one tick per decade.
    for (const tick of ["100 ms", "1 s", "10 s", "100 s", "1000 s"]) expect(svg).toContain(`>${tick}</text>`);
    expect(svg).not.toContain(">10 ms</text>");
    // Sizes a factor of 10 apart are evenly spaced across.
    const xs = [...svg.matchAll(/<circle cx="([^"]+)"[^>]*data-system="shoal"/g)].map((m) => Number(m[1]));
    expect(xs[1]! - xs[0]!).toBeCloseTo(xs[2]! - xs[1]!, 0);
  });

  it("uses a linear scale from 0 when the values are close together", () => {
    const rows = [row("shoal", 1_000, 11), row("raw", 1_000, 9)];
    const svg = scenarioChart(rows, "bootstrap");
    expect(attr(svg, "data-y-scale")).toBe("linear");
    expect(svg).toContain(">0 ms</text>");
  });

  it("honours a forced scale", () => {
    expect(attr(scenarioChart(full, "bootstrap", { yScale: "linear" }), "data-y-scale")).toBe("linear");
  });

  it("names a system that was not measured and the sizes a system lacks", () => {
    const rows = [
      row("shoal", 1_000, 500),
      row("shoal", 10_000, 5_000),
      row("raw", 1_000, 100),
      row("raw", 10_000, null, { note: "raw: timeout after 60 s" }),
    ];
    const svg = scenarioChart(rows, "bootstrap");
    expect(points(svg, "shoal")).toHaveLength(2);
    expect(points(svg, "raw")).toHaveLength(1);
    expect(points(svg, "automerge-repo")).toHaveLength(0);
    expect(svg).not.toMatch(/<polyline[^>]*data-system="raw"/);
    expect(svg).toContain("automerge-repo (not measured in these runs)");
    expect(svg).toContain("no figure at N = 10,000 (timeout)");
    const skipped = scenarioChart(
      [row("shoal", 1_000, 500), row("raw", 1_000, null, { note: "skipped: --no-peer" })],
      "bootstrap",
    );
    expect(skipped).toContain("raw limit (Dexie, bare WebSocket) (skipped: no figure)");
  });

  it("charts a single size, and says so when there is no figure at all", () => {
    expect(points(scenarioChart([row("shoal", 1_000, 500)], "bootstrap"), "shoal")).toHaveLength(1);
    const empty = scenarioChart([row("shoal", 1_000, null, { note: "skipped: --no-peer" })], "bootstrap");
    expect(empty).toContain("No figures for this scenario");
    expect(empty).not.toContain("<circle");
  });

  it("reads heap and RSS rows in MB, and escapes notes", () => {
    const rows: BenchRow[] = [
      { scenario: "heap", n: 1_000, system: "shoal", runs: 1, heapMB: 4 },
      { scenario: "heap", n: 1_000, system: "automerge-repo", runs: 0, heapMB: null, note: "error: <a & b>" },
    ];
    const svg = scenarioChart(rows, "heap");
    expect(points(svg, "shoal")).toHaveLength(1);
    expect(svg).toMatch(/>\d+ MB<\/text>/);
    expect(svg).not.toContain("<a & b>");
  });

  it("draws the spread of several runs", () => {
    const svg = scenarioChart([row("shoal", 1_000, 500, { samples: [400, 500, 900] })], "bootstrap");
    expect(svg).toContain("(median of 3 runs)");
    expect(svg).toMatch(
      /<line x1="[^"]+" x2="[^"]+" y1="[^"]+" y2="[^"]+" stroke="#0f766e" stroke-width="1"/,
    );
  });
});

describe("benchCharts and the results of earlier runs", () => {
  const resultsDir = join(import.meta.dirname, "..", "bench", "results");
  const earlier = readdirSync(resultsDir).filter((f) => /^\d.*-vm\.json$/.test(f));

  it("draws every scenario of every earlier result", () => {
    expect(earlier.length).toBeGreaterThan(0);
    for (const f of earlier) {
      const result = JSON.parse(readFileSync(join(resultsDir, f), "utf8"));
      const charts = benchCharts(result.rows);
      expect(charts.map((c) => c.scenario)).toEqual(
        expect.arrayContaining(["insert", "bootstrap", "upload", "heap", "server-rss"]),
      );
      const shoalBootstraps = result.rows.filter(
        (r: BenchRow) => r.scenario === "bootstrap" && r.system === "shoal" && typeof r.ms === "number",
      );
      const bootstrap = charts.find((c) => c.scenario === "bootstrap")!.svg;
      expect(points(bootstrap, "shoal")).toHaveLength(shoalBootstraps.length);
      // The date; runs since issue 15 add their load average after it ("... (load 1.7 median, ...)").
      const when = result.at.slice(0, 16).replace("T", " ");
      if (result.load) expect(describeRun(result)).toMatch(new RegExp(`^${when} \\(load `));
      else expect(describeRun(result)).toBe(when);
    }
  });

  it("writes one file per scenario", () => {
    const dir = mkdtempSync(join(tmpdir(), "bench-chart-"));
    try {
      const rows = [row("shoal", 1_000, 500), { ...row("shoal", 1_000, 3), scenario: "insert" }];
      const files = writeBenchCharts(rows, dir, { prefix: "run-" });
      expect(readdirSync(dir).sort()).toEqual(["run-bootstrap.svg", "run-insert.svg"]);
      expect(files).toHaveLength(2);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("merges runs: the first figure wins, a missing figure is filled from a later run", () => {
    const merged = mergeRows([
      [row("shoal", 1_000, 500), row("automerge-repo", 1_000, null, { note: "timeout" })],
      [row("shoal", 1_000, 900), row("automerge-repo", 1_000, 4_000)],
    ]);
    expect(merged).toHaveLength(2);
    expect(merged.find((r) => r.system === "shoal")!.ms).toBe(500);
    expect(merged.find((r) => r.system === "automerge-repo")!.ms).toBe(4_000);
  });

  it("names a loaded run in the subtitle", () => {
    const load = { cpus: 2, samples: 10, min: 1, median: 2.5, max: 3.1, loaded: true };
    expect(describeRun({ at: "2026-12-08T10:11:12.000Z", load: { run: load } })).toBe(
      "2026-12-08 10:11 (load 2.5 median, 3.1 max on 2 cores: LOADED)",
    );
  });
});
