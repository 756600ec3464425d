// Where Shoal's browser tests and benchmarks find Chromium, and how they launch it.
// Debian's Chromium is the default because this project never downloads a browser (see TOOLCHAIN.md);
// CHROMIUM_PATH lets a developer elsewhere point at any Chromium, including Playwright's own.
import { existsSync } from "node:fs";

/** The command a non-root user must run once to get Debian's Chromium. */
export const CHROMIUM_INSTALL_COMMAND = "sudo apt-get update && sudo apt-get install -y chromium";

/**
 * Flags for headless Chromium on a small CI box: no GPU, no background traffic to Google services
 * (it would only slow start-up on a machine without internet), no sandbox because CI runs as root.
 */
export const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/**
 * The Chromium binary to launch, or undefined to let Playwright use its own browser.
 * `/usr/lib/chromium/chromium` is preferred over the `/usr/bin/chromium` wrapper script, which prints a
 * harmless but noisy warning on every start.
 * @example chromium.launch({ executablePath: chromiumExecutable(), args: CHROMIUM_ARGS })
 */
export function chromiumExecutable() {
  const fromEnv = process.env.CHROMIUM_PATH;
  if (fromEnv) return fromEnv;
  for (const candidate of ["/usr/lib/chromium/chromium", "/usr/bin/chromium"]) {
    if (existsSync(candidate)) return candidate;
  }
  return undefined;
}
