import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { defineConfig } from "@playwright/test";
import { CHROMIUM_ARGS, chromiumExecutable } from "../scripts/chromium.mjs";

// This file is evaluated by the runner and again by every worker. The runner creates the relay's data
// directory once and passes it on through the environment, which workers inherit.
const dataDir = (process.env.SHOAL_E2E_DATA ??= mkdtempSync(join(tmpdir(), "shoal-e2e-")));

export default defineConfig({
  testDir: ".",
  testMatch: "**/*.spec.ts",
  outputDir: "../.test-results/playwright-artifacts",
  // The specs' own relays start from a bundle of the relay built once per run (support/global-setup.ts).
  globalSetup: "./support/global-setup.ts",
  globalTeardown: "./support/global-teardown.ts",
  // Two cores: one browser at a time keeps timings sane and the relay uncontended.
  workers: 1,
  fullyParallel: false,
  retries: 0,
  timeout: 60_000,
  expect: { timeout: 10_000 },
  reporter: "list",
  use: {
    // The webServer's `wait` pattern below stores the relay's URL in SHOAL_E2E_URL before workers start.
    baseURL: process.env.SHOAL_E2E_URL,
    trace: "retain-on-failure",
    launchOptions: { executablePath: chromiumExecutable(), args: [...CHROMIUM_ARGS] },
  },
  projects: [{ name: "chromium", use: { browserName: "chromium" } }],
  webServer: {
    // Build the demo (/) and the harness (/harness/), then serve both from a real relay on a free port.
    // Playwright starts this in its own process group and signals the whole group, so the shell's
    // children (the relay) stop with it.
    command:
      "node scripts/build.mjs --e2e && node --conditions=shoal-source --import tsx sync-server/src/cli.ts --port 0 --host 127.0.0.1" +
      ` --store memory --data "${dataDir}" --static dist/e2e-site`,
    cwd: "..",
    wait: { stdout: /(?<shoal_e2e_url>http:\/\/127\.0\.0\.1:\d+)/ },
    timeout: 180_000,
    reuseExistingServer: false,
    gracefulShutdown: { signal: "SIGTERM", timeout: 5_000 },
  },
});
