// Browser builds, shared by `npm start` (the demo) and the Playwright webServer (demo + test harness).
// Usage: node scripts/build.mjs [--e2e | --bench]
import { rmSync } from "node:fs";
import { fileURLToPath, pathToFileURL } from "node:url";
import { build } from "vite";

const root = fileURLToPath(new URL("..", import.meta.url));
const configFile = fileURLToPath(new URL("../vite.config.ts", import.meta.url));

/** Builds the demo app into dist/demo-app (or `outDir`), the directory the relay serves with --static. */
export async function buildDemo(outDir = "dist/demo-app", logLevel = "info") {
  await build({ configFile, mode: "production", logLevel, build: { outDir: `${root}/${outDir}` } });
}

/**
 * Builds the site the browser suites run against: the demo at / and the harness page at /harness/,
 * so one relay process with one --static directory serves both.
 */
export async function buildE2eSite() {
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
