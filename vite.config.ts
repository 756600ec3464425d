import { fileURLToPath } from "node:url";
import react from "@vitejs/plugin-react";
import { defaultClientConditions, defaultServerConditions, type UserConfig } from "vite";
import { defineConfig } from "vitest/config";
import { shoal } from "./client/src/vite/index.ts";

const fromRoot = (path: string): string => fileURLToPath(new URL(path, import.meta.url));

/** Where `npm run dev` forwards `/sync`: the relay started with `npm run relay` (override with SHOAL_RELAY). */
const relayUrl = process.env.SHOAL_RELAY ?? "http://127.0.0.1:8787";

/**
 * Inside this repository `@shoal/client` and `@shoal/sync-server` resolve to their TypeScript sources
 * (the "shoal-source" condition of their package.json exports), so tests, `vite dev` and builds need no
 * package build first; installed packages resolve to dist/ instead. tsconfig.base.json says the same
 * to tsc (`customConditions`), and Node processes that run the sources get `--conditions=shoal-source`.
 */
const sourceResolution = {
  resolve: { conditions: ["shoal-source", ...defaultClientConditions] },
  ssr: { resolve: { conditions: ["shoal-source", ...defaultServerConditions] } },
} satisfies UserConfig;

/**
 * The browser builds. Default mode: the demo app into dist/demo-app (served by `npm start`).
 * Mode "harness": the Playwright test page into dist/e2e-site/harness, served under /harness/ next to the
 * demo by the same relay (scripts/build.mjs assembles dist/e2e-site).
 */
function appConfig(mode: string): UserConfig {
  const harness = mode === "harness";
  return {
    root: fromRoot(harness ? "./e2e/harness" : "./demo-app"),
    base: harness ? "/harness/" : "/",
    // shoal(): what every app using @shoal/client adds (Automerge's wasm kept out of pre-bundling).
    plugins: [react(), shoal()],
    build: {
      // es2022 for top-level await, which Automerge's wasm initialisation relies on.
      target: "es2022",
      outDir: fromRoot(harness ? "./dist/e2e-site/harness" : "./dist/demo-app"),
      emptyOutDir: true,
      // Automerge's wasm is 3.6 MB on purpose; the default 500 kB warning would only be noise.
      chunkSizeWarningLimit: 4096,
    },
    server: {
      proxy: { "/sync": { target: relayUrl, ws: true }, "/healthz": relayUrl },
    },
  };
}

export default defineConfig(({ mode }) => ({
  ...sourceResolution,
  // Under vitest the app settings (root: demo-app in particular) would move the test projects' root.
  ...(process.env.VITEST ? {} : appConfig(mode)),
  test: {
    // Vitest's default on this 2-core machine is one worker; many suites wait on real processes and
    // timers rather than the CPU, so two files at a time halve the wall time.
    maxWorkers: 2,
    projects: [
      {
        ...sourceResolution,
        test: {
          name: "unit",
          include: ["client/src/**/*.test.ts", "sync-server/src/**/*.test.ts"],
          environment: "node",
          setupFiles: ["client/test/setup-fake-indexeddb.ts"],
        },
      },
      {
        ...sourceResolution,
        test: {
          name: "integration",
          include: ["client/test/**/*.test.ts", "sync-server/test/**/*.test.ts"],
          environment: "node",
          setupFiles: ["client/test/setup-fake-indexeddb.ts"],
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
      {
        test: {
          // Type tests: vitest runs tsc over these files instead of executing them; a type assertion that
          // fails, or an `@ts-expect-error` line that compiles, fails its test.
          name: "types",
          typecheck: {
            enabled: true,
            only: true,
            include: ["client/test/types/**/*.test-d.ts"],
            tsconfig: "./client/test/types/tsconfig.json",
          },
        },
      },
    ],
  },
}));
