// Makes sure a Chromium for Playwright exists before the browser suites run.
// As root (CI, a fresh container) it installs Debian's package; otherwise it names the one command to run,
// because installing system packages behind a developer's back is not a test runner's job.
import { spawnSync } from "node:child_process";
import { pathToFileURL } from "node:url";
import { ensurePackage } from "./ensure-package.mjs";

/** @returns {boolean} true when a Chromium binary is available afterwards. */
export function ensureChromium() {
  return ensurePackage({ binary: "/usr/bin/chromium", pkg: "chromium", envVar: "CHROMIUM_PATH" });
}

/** @returns {boolean} true when redis-server (for the Redis store's tests) is available afterwards. */
export function ensureRedis() {
  return ensurePackage({
    binary: "/usr/bin/redis-server",
    pkg: "redis-server",
    envVar: "REDIS_SERVER",
    // Debian's package starts a system-wide server on 6379; the tests start their own, so stop it.
    after: () => spawnSync("service", ["redis-server", "stop"], { stdio: "ignore" }),
  });
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  process.exit(ensureChromium() ? 0 : 1);
}
