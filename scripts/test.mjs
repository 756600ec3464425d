// `npm test`: every test runner of the repository, one closing line of totals.
// vitest (unit + integration projects), then Playwright in Debian's Chromium. Each runner writes a JSON
// report; the totals are summed from those, because CI reads only the last line `N passed, N failed`.
// A runner that crashes (no report, or a non-zero exit with no failed test in its report) counts as at
// least one failure, so a broken setup can never look green.
import { spawn } from "node:child_process";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { ensureChromium, ensureRedis } from "./ensure-chromium.mjs";

const root = fileURLToPath(new URL("..", import.meta.url));
const resultsDir = join(root, ".test-results");
const vitestReport = join(resultsDir, "vitest.json");
const playwrightReport = join(resultsDir, "playwright.json");
const netnsReport = join(resultsDir, "playwright-netns.json");
const totalsFile = join(resultsDir, "totals.txt");
const bin = (name) => join(root, "node_modules", ".bin", name);

/** Runs a command with inherited stdio; resolves to its exit code (1 if it died from a signal). */
function run(command, args, env = {}) {
  return new Promise((resolve) => {
    const child = spawn(command, args, { cwd: root, stdio: "inherit", env: { ...process.env, ...env } });
    child.on("error", (error) => {
      console.error(`test: could not start ${command}: ${error.message}`);
      resolve(1);
    });
    child.on("exit", (code, signal) => resolve(code ?? (signal ? 1 : 0)));
  });
}

function readJson(file) {
  try {
    return JSON.parse(readFileSync(file, "utf8"));
  } catch {
    return undefined;
  }
}

/** @returns {{ passed: number, failed: number }} */
function vitestCounts(exitCode) {
  const report = readJson(vitestReport);
  if (!report) return { passed: 0, failed: 1 };
  // A file that fails to import or whose hooks throw has status "failed" but no failed assertion.
  const brokenFiles = (report.testResults ?? []).filter(
    (file) => file.status === "failed" && !(file.assertionResults ?? []).some((t) => t.status === "failed"),
  ).length;
  const failed = (report.numFailedTests ?? 0) + brokenFiles;
  return { passed: report.numPassedTests ?? 0, failed: exitCode !== 0 ? Math.max(failed, 1) : failed };
}

/** @returns {{ passed: number, failed: number }} */
function playwrightCounts(exitCode, file = playwrightReport) {
  const report = readJson(file);
  if (!report?.stats) return { passed: 0, failed: 1 };
  const { expected = 0, unexpected = 0, flaky = 0 } = report.stats;
  // `errors` holds failures outside any test: a webServer that never came up, a config that throws.
  const failed = unexpected + (report.errors?.length ?? 0);
  return { passed: expected + flaky, failed: exitCode !== 0 ? Math.max(failed, 1) : failed };
}

const started = Date.now();
mkdirSync(resultsDir, { recursive: true });
for (const file of [vitestReport, playwrightReport, netnsReport, totalsFile]) rmSync(file, { force: true });

// The Redis store's tests start their own Debian redis-server; without it they fail and say why.
ensureRedis();
const vitestExit = await run(bin("vitest"), [
  "run",
  "--reporter=default",
  "--reporter=json",
  `--outputFile.json=${vitestReport}`,
]);
const vitest = vitestCounts(vitestExit);

let playwright = { passed: 0, failed: 1 };
if (ensureChromium()) {
  const playwrightExit = await run(
    bin("playwright"),
    ["test", "-c", "e2e/playwright.config.ts", "--reporter=list,json"],
    { PLAYWRIGHT_JSON_OUTPUT_FILE: playwrightReport },
  );
  playwright = playwrightCounts(playwrightExit);
  // WebRTC needs a network interface besides loopback: those specs (two devices syncing, the
  // transport contract over data channels, a removed device refused by its peers) run again inside a private network namespace
  // (scripts/rtc-netns.sh, root only; exit 77 = cannot make one). In the run above they skipped.
  if (process.getuid?.() === 0) {
    const netnsExit = await run(
      join(root, "scripts", "rtc-netns.sh"),
      [
        bin("playwright"),
        "test",
        "-c",
        "e2e/playwright.config.ts",
        "e2e/webrtc.spec.ts",
        "e2e/webrtc-contract.spec.ts",
        "e2e/webrtc-members.spec.ts",
        "--reporter=list,json",
        "--output=.test-results/playwright-netns-artifacts",
      ],
      // The run above built dist/e2e-site from the same sources: its webServer keeps it.
      { PLAYWRIGHT_JSON_OUTPUT_FILE: netnsReport, SHOAL_E2E_REUSE_SITE: playwrightExit === 0 ? "1" : "0" },
    );
    if (netnsExit === 77) console.error("test: no network namespace here; the WebRTC specs stay skipped.");
    else {
      const netns = playwrightCounts(netnsExit, netnsReport);
      playwright = { passed: playwright.passed + netns.passed, failed: playwright.failed + netns.failed };
    }
  }
} else {
  console.error("test: skipping the Playwright suites: no Chromium (counted as 1 failed).");
}

const passed = vitest.passed + playwright.passed;
const failed = vitest.failed + playwright.failed;
const seconds = ((Date.now() - started) / 1000).toFixed(1);
console.log(`\nvitest: ${vitest.passed} passed / ${vitest.failed} failed`);
console.log(`playwright: ${playwright.passed} passed / ${playwright.failed} failed`);
console.log(`total time: ${seconds} s`);
const line = `${passed} passed, ${failed} failed`;
writeFileSync(totalsFile, `${line}\n`);
console.log(line);
process.exitCode = failed > 0 ? 1 : 0;
