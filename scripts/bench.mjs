// `npm run bench`: what IndexedDB durability costs in Chromium, measured through Dexie.
// Issue 3 commits with strict durability (Chromium's default became "relaxed" in version 121, so a
// "saved" commit could vanish on power loss); this bench prices that choice. It asserts nothing about
// time: it prints a table of medians and writes every sample to bench/results/<timestamp>.json.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { cpus } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { CHROMIUM_ARGS, chromiumExecutable } from "./chromium.mjs";
import { ensureChromium } from "./ensure-chromium.mjs";

const RUNS = 5;
const BULK_ROWS = 1_000;
const SINGLE_PUTS = 100;
const MODES = ["strict", "relaxed"];
const ORIGIN = "http://bench.localhost";

const root = fileURLToPath(new URL("..", import.meta.url));
const require = createRequire(import.meta.url);
const dexieSource = readFileSync(require.resolve("dexie/dist/dexie.min.js"), "utf8");
const dexieVersion = JSON.parse(readFileSync(require.resolve("dexie/package.json"), "utf8")).version;

/**
 * Runs in the page. One fresh database per sample so no run inherits another's file sizes or caches.
 * Rows look like a patient record: about 10 fields, one of them a 200-character note.
 */
async function sample({ durability, scenario, bulkRows, singlePuts, seed }) {
  const Dexie = /** @type {any} */ (globalThis).Dexie;
  const name = `bench-${scenario}-${durability}-${seed}`;
  const db = new Dexie(name, { chromeTransactionDurability: durability });
  db.version(1).stores({ patients: "id, name, ward, *tags" });
  await db.open();
  const count = scenario === "bulkPut" ? bulkRows : singlePuts;
  const rows = Array.from({ length: count }, (_, i) => ({
    id: `${seed}-${String(i).padStart(6, "0")}`,
    name: `Patient ${i}`,
    ward: `W${i % 12}`,
    tags: i % 3 === 0 ? ["diabetic", "follow-up"] : ["routine"],
    birthDate: `19${50 + (i % 50)}-0${1 + (i % 9)}-1${i % 10}`,
    phone: `+44 20 7946 ${String(i % 10_000).padStart(4, "0")}`,
    clinicId: "north",
    allergies: i % 5 === 0 ? "penicillin" : "",
    visits: i % 17,
    notes: "Reviewed at the morning round; stable, continue current plan. ".repeat(4).slice(0, 200),
  }));
  const started = performance.now();
  if (scenario === "bulkPut") {
    await db.patients.bulkPut(rows); // one readwrite transaction for all rows
  } else {
    for (const row of rows) await db.patients.put(row); // one transaction per row
  }
  const elapsed = performance.now() - started;
  db.close();
  await Dexie.delete(name);
  return elapsed;
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

if (!ensureChromium()) process.exit(1);

// A persistent profile on disk: an incognito context keeps IndexedDB in memory, where durability is moot.
const profilesDir = join(root, ".shoal");
mkdirSync(profilesDir, { recursive: true });
const userDataDir = mkdtempSync(join(profilesDir, "bench-profile-"));
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath: chromiumExecutable(),
  args: [...CHROMIUM_ARGS],
  headless: true,
});
try {
  const page = context.pages()[0] ?? (await context.newPage());
  // IndexedDB needs a real origin; Playwright answers for this one, so no server is needed.
  await page.route(`${ORIGIN}/**`, (route) =>
    route.fulfill({ contentType: "text/html", body: "<!doctype html><title>Shoal bench</title>" }),
  );
  await page.goto(`${ORIGIN}/`);
  await page.addScriptTag({ content: dexieSource });
  const browserVersion = context.browser()?.version() ?? (await page.evaluate(() => navigator.userAgent));

  const scenarios = [
    { scenario: "bulkPut", label: `bulkPut ${BULK_ROWS} rows, 1 transaction` },
    { scenario: "singlePuts", label: `${SINGLE_PUTS} puts, 1 transaction each` },
  ];
  const samples = {};
  for (const { scenario } of scenarios) {
    for (const durability of MODES) samples[`${scenario}/${durability}`] = [];
    // One warm-up per mode (discarded), then alternate the modes so drift hits both alike.
    for (let run = -1; run < RUNS; run++) {
      for (const durability of MODES) {
        const seed = `${run + 1}-${Date.now().toString(36)}`;
        const ms = await page.evaluate(sample, {
          durability,
          scenario,
          bulkRows: BULK_ROWS,
          singlePuts: SINGLE_PUTS,
          seed,
        });
        if (run >= 0) samples[`${scenario}/${durability}`].push(ms);
      }
    }
  }

  const rows = scenarios.map(({ scenario, label }) => {
    const strict = median(samples[`${scenario}/strict`]);
    const relaxed = median(samples[`${scenario}/relaxed`]);
    return { scenario, label, strictMs: strict, relaxedMs: relaxed, strictOverRelaxed: strict / relaxed };
  });

  console.log(
    `\nIndexedDB durability in Chromium ${browserVersion}, Dexie ${dexieVersion}, median of ${RUNS} runs`,
  );
  const pad = (text, width) => String(text).padEnd(width);
  const padStart = (text, width) => String(text).padStart(width);
  console.log(
    `${pad("scenario", 36)}${padStart("strict ms", 12)}${padStart("relaxed ms", 12)}${padStart("strict/relaxed", 16)}`,
  );
  for (const row of rows) {
    console.log(
      `${pad(row.label, 36)}${padStart(row.strictMs.toFixed(1), 12)}${padStart(row.relaxedMs.toFixed(1), 12)}` +
        `${padStart(row.strictOverRelaxed.toFixed(2) + "x", 16)}`,
    );
  }

  const at = new Date();
  const resultsDir = join(root, "bench", "results");
  mkdirSync(resultsDir, { recursive: true });
  const file = join(resultsDir, `${at.toISOString().replace(/[:.]/g, "-")}.json`);
  const environment = {
    chromium: browserVersion,
    dexie: dexieVersion,
    node: process.version,
    cpus: cpus().length,
  };
  const settings = { runs: RUNS, bulkRows: BULK_ROWS, singlePuts: SINGLE_PUTS, warmupRunsDiscarded: 1 };
  writeFileSync(
    file,
    `${JSON.stringify({ at: at.toISOString(), environment, settings, results: rows, samples }, null, 2)}\n`,
  );
  console.log(`\nwrote ${file.slice(root.length)}`);
} finally {
  await context.close();
  rmSync(userDataDir, { recursive: true, force: true });
}
