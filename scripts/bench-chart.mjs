// Draws bootstrap time against N for Shoal, the peer (automerge-repo) and the raw limit as an SVG, from
// a bench result's rows. `npm run bench` writes it beside the JSON and as bench/bootstrap.svg;
// `node scripts/bench-chart.mjs bench/results/<file>.json` redraws one.
import { readFileSync, writeFileSync } from "node:fs";
import { pathToFileURL } from "node:url";

const SERIES = [
  { system: "shoal", label: "Shoal", color: "#0f766e" },
  { system: "automerge-repo", label: "automerge-repo", color: "#b45309" },
  { system: "raw", label: "raw limit (WebSocket + Dexie bulkPut)", color: "#475569" },
];

/**
 * @param {{ scenario: string, n: number, system: string, ms?: number }[]} rows
 * @param {string} title
 * @returns {string} an SVG document (log-log axes: N and seconds)
 */
export function bootstrapChart(rows, title = "Fresh-device bootstrap time") {
  const points = rows.filter((r) => r.scenario === "bootstrap" && typeof r.ms === "number" && r.ms > 0);
  const ns = [...new Set(points.map((p) => p.n))].sort((a, b) => a - b);
  const W = 640,
    H = 400,
    L = 70,
    R = 20,
    T = 40,
    B = 80;
  if (ns.length === 0)
    return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="80"><text x="10" y="40">No bootstrap figures in this run.</text></svg>\n`;
  const secs = points.map((p) => p.ms / 1000);
  const yMin = 10 ** Math.floor(Math.log10(Math.min(...secs)));
  const yMax = 10 ** Math.ceil(Math.log10(Math.max(...secs)));
  const xMin = Math.log10(ns[0]) - 0.2,
    xMax = Math.log10(ns.at(-1)) + 0.2;
  const x = (n) => L + ((Math.log10(n) - xMin) / (xMax - xMin)) * (W - L - R);
  const y = (s) =>
    T + (1 - (Math.log10(s) - Math.log10(yMin)) / (Math.log10(yMax) - Math.log10(yMin))) * (H - T - B);
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`,
  ];
  out.push(
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${L}" y="24" font-size="15" font-weight="bold">${title}</text>`,
  );
  for (let s = yMin; s <= yMax; s *= 10) {
    out.push(
      `<line x1="${L}" x2="${W - R}" y1="${y(s)}" y2="${y(s)}" stroke="#e2e8f0"/>`,
      `<text x="${L - 8}" y="${y(s) + 4}" text-anchor="end">${s >= 1 ? s : s.toFixed(2)} s</text>`,
    );
  }
  for (const n of ns)
    out.push(`<text x="${x(n)}" y="${H - B + 18}" text-anchor="middle">N = ${n.toLocaleString("en")}</text>`);
  SERIES.forEach((series, i) => {
    const pts = points.filter((p) => p.system === series.system).sort((a, b) => a.n - b.n);
    if (pts.length > 0) {
      out.push(
        `<polyline fill="none" stroke="${series.color}" stroke-width="2.5" points="${pts.map((p) => `${x(p.n)},${y(p.ms / 1000)}`).join(" ")}"/>`,
      );
      for (const p of pts)
        out.push(
          `<circle cx="${x(p.n)}" cy="${y(p.ms / 1000)}" r="4" fill="${series.color}"><title>${series.label}, N = ${p.n}: ${(p.ms / 1000).toFixed(2)} s</title></circle>`,
        );
    }
    const ly = H - B + 40 + i * 14;
    out.push(
      `<rect x="${L}" y="${ly - 9}" width="12" height="4" fill="${series.color}"/>`,
      `<text x="${L + 18}" y="${ly - 4}">${series.label}${pts.length === 0 ? " (not measured in this run)" : ""}</text>`,
    );
  });
  out.push("</svg>");
  return `${out.join("\n")}\n`;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const files = process.argv.slice(2);
  if (files.length === 0) {
    console.error("usage: node scripts/bench-chart.mjs <result.json> [more.json ...] (rows are merged)");
    process.exit(2);
  }
  // Rows merged across runs: the first file's figure wins for each (scenario, n, system).
  const seen = new Set();
  const rows = files
    .flatMap((f) => JSON.parse(readFileSync(f, "utf8")).rows)
    .filter((r) => {
      const k = `${r.scenario}|${r.n}|${r.system}`;
      if (typeof r.ms !== "number" || seen.has(k)) return false;
      seen.add(k);
      return true;
    });
  writeFileSync("bench/bootstrap.svg", bootstrapChart(rows));
  console.log("wrote bench/bootstrap.svg");
}
