// Vitest global setup (vite.config.ts): bundles the relay CLI once per test run (relay-bundle.ts says
// why) and removes the bundle when the run ends. Runs in vitest's main process before the test files;
// the workers it starts inherit the environment variable that names the bundle.
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { TestProject } from "vitest/node";
import { buildRelayBundle, RELAY_BUNDLE_ENV } from "./relay-bundle.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

export default async function setup(project: TestProject): Promise<() => void> {
  // Inside the repository, so the bundle's package imports resolve from its node_modules.
  const cache = join(ROOT, "node_modules", ".cache");
  mkdirSync(cache, { recursive: true });
  const dir = mkdtempSync(join(cache, "shoal-relay-test-"));
  process.env[RELAY_BUNDLE_ENV] = await buildRelayBundle(dir);
  // Watch mode: a rerun (after an edit, possibly of the relay) starts the relay as it is now.
  project.onTestsRerun(async () => void (await buildRelayBundle(dir)));
  return () => {
    delete process.env[RELAY_BUNDLE_ENV];
    rmSync(dir, { recursive: true, force: true });
  };
}
