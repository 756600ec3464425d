import { fileURLToPath } from "node:url";
import react from "@vitejs/plugin-react";
import type { UserConfig } from "vite";
import { defineConfig } from "vitest/config";

const fromRoot = (path: string): string => fileURLToPath(new URL(path, import.meta.url));

/** Where `npm run dev` forwards `/sync`: the relay started with `npm run relay` (override with SHOAL_RELAY). */
const relayUrl = process.env.SHOAL_RELAY ?? "http://127.0.0.1:8787";

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
    plugins: [react()],
    // Vite's dependency pre-bundler cannot follow Automerge's wasm import; `vite dev` fails without this.
    optimizeDeps: { exclude: ["@automerge/automerge"] },
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
  // Under vitest the app settings (root: demo-app in particular) would move the test projects' root.
  ...(process.env.VITEST ? {} : appConfig(mode)),
  test: {
    // Vitest's default on this 2-core machine is one worker; many suites wait on real processes and
    // timers rather than the CPU, so two files at a time halve the wall time.
    maxWorkers: 2,
    projects: [
      {
        test: {
          name: "unit",
          include: ["client/src/**/*.test.ts", "sync-server/src/**/*.test.ts"],
          environment: "node",
          setupFiles: ["client/test/setup-fake-indexeddb.ts"],
        },
      },
      {
        test: {
          name: "integration",
          include: ["client/test/**/*.test.ts", "sync-server/test/**/*.test.ts"],
          environment: "node",
          setupFiles: ["client/test/setup-fake-indexeddb.ts"],
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
    ],
  },
}));
