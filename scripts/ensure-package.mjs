// Makes sure a program from a Debian package exists before the suites that need it run.
// As root (CI, a fresh container) it installs the package; otherwise it names the one command to run,
// because installing system packages behind a developer's back is not a test runner's job.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";

/**
 * @param {{ binary: string, pkg: string, envVar: string, after?: () => void }} o
 *   `binary` the default path, `pkg` the Debian package, `envVar` an override of the path.
 * @returns {boolean} true when the program is available afterwards.
 */
export function ensurePackage({ binary, pkg, envVar, after }) {
  const wanted = process.env[envVar] || binary;
  if (existsSync(wanted)) return true;
  if (process.env[envVar]) {
    console.error(`ensure: ${envVar}=${wanted} does not exist.`);
    return false;
  }
  if (process.getuid?.() !== 0) {
    console.error(
      `ensure: ${pkg} is missing. Install it with:\n  sudo apt-get update && sudo apt-get install -y ${pkg}`,
    );
    return false;
  }
  console.log(`ensure: installing Debian's ${pkg} package...`);
  // Another apt run (e.g. a provisioning step) may hold the dpkg lock; wait for it instead of failing.
  const lock = ["-o", "DPkg::Lock::Timeout=300"];
  for (const args of [
    ["update", ...lock],
    ["install", "-y", ...lock, pkg],
  ]) {
    const result = spawnSync("apt-get", args, {
      stdio: "inherit",
      env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
    });
    if (result.status !== 0) {
      console.error(`ensure: apt-get ${args[0]} ${pkg} failed (exit ${result.status ?? result.signal}).`);
      return false;
    }
  }
  after?.();
  return existsSync(wanted);
}
