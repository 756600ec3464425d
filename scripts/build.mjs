// Browser builds, shared by `npm start` (the demo) and the Playwright webServer (demo + test harness).
// Usage: node scripts/build.mjs [--e2e | --bench]
import { existsSync, rmSync } from "node:fs";
import { fileURLToPath, pathToFileURL } from "node:url";
import { build } from "vite";

const root = fileURLToPath(new URL("..", import.meta.url));
const configFile = fileURLToPath(new URL("../vite.config.ts", import.meta.url));

/** Builds the demo app into dist/demo-app (or `outDir`), the directory the relay serves with --static. */
export async function buildDemo(outDir = "dist/demo-app", logLevel = "info") {
  await build({ configFile, mode: "production", logLevel, build: { outDir: `${root}/${outDir}` } });
}

/**
 * Set by `npm test` (scripts/test.mjs) for its second Playwright run, the WebRTC specs inside a network
 * namespace: the first run built dist/e2e-site from the same sources a minute earlier, and building it
 * again would only cost the time of two Vite builds.
 */
export const REUSE_E2E_SITE_ENV = "SHOAL_E2E_REUSE_SITE";

/**
 * Builds the site the browser suites run against: the demo at / and the harness page at /harness/,
 * so one relay process with one --static directory serves both. With REUSE_E2E_SITE_ENV set to 1 and
 * a complete site already built (both pages there), keeps it.
 */
export async function buildE2eSite() {
  const built = ["index.html", "sw.js", "harness/index.html"].every((f) =>
    existsSync(`${root}/dist/e2e-site/${f}`),
  );
  if (process.env[REUSE_E2E_SITE_ENV] === "1" && built) {
    console.log("build: reusing dist/e2e-site (built earlier in this run)");
    return;
  }
  rmSync(`${root}/dist/e2e-site`, { recursive: true, force: true });
  await buildDemo("dist/e2e-site", "warn");
  await build({ configFile, mode: "harness", logLevel: "warn" });
}

/**
 * Builds the bench page (bench/page) into dist/bench-site, served by the relay that `npm run bench`
 * starts. `minify: false` keeps function names readable in a profile (`npm run bench:profile`).
 */
export async function buildBenchSite({ minify = true } = {}) {
  await build({
    configFile: `${root}/bench/vite.config.ts`,
    mode: "production",
    logLevel: "warn",
    build: { minify },
  });
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const target = process.argv.includes("--e2e")
    ? buildE2eSite
    : process.argv.includes("--bench")
      ? buildBenchSite
      : buildDemo;
  await target();
}
