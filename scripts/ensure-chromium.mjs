// Makes sure a Chromium for Playwright exists before the browser suites run.
// As root (CI, a fresh container) it installs Debian's package; otherwise it names the one command to run,
// because installing system packages behind a developer's back is not a test runner's job.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { pathToFileURL } from "node:url";
import { CHROMIUM_INSTALL_COMMAND } from "./chromium.mjs";

/** @returns {boolean} true when a Chromium binary is available afterwards. */
export function ensureChromium() {
  const wanted = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
  if (existsSync(wanted)) return true;
  if (process.env.CHROMIUM_PATH) {
    console.error(`ensure-chromium: CHROMIUM_PATH=${wanted} does not exist.`);
    return false;
  }
  if (process.getuid?.() !== 0) {
    console.error(`ensure-chromium: Chromium is missing. Install it with:\n  ${CHROMIUM_INSTALL_COMMAND}`);
    return false;
  }
  console.log("ensure-chromium: installing Debian's chromium package...");
  // Another apt run (e.g. a provisioning step) may hold the dpkg lock; wait for it instead of failing.
  const lock = ["-o", "DPkg::Lock::Timeout=300"];
  for (const args of [
    ["update", ...lock],
    ["install", "-y", ...lock, "chromium"],
  ]) {
    const result = spawnSync("apt-get", args, {
      stdio: "inherit",
      env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
    });
    if (result.status !== 0) {
      console.error(`ensure-chromium: apt-get ${args[0]} failed (exit ${result.status ?? result.signal}).`);
      return false;
    }
  }
  return existsSync(wanted);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  process.exit(ensureChromium() ? 0 : 1);
}
