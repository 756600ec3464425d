import { fileURLToPath } from "node:url";
import react from "@vitejs/plugin-react";
import { defaultClientConditions, defaultServerConditions, type UserConfig } from "vite";
import { VitePWA } from "vite-plugin-pwa";
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

/** The demo's colours (styles.css `--accent` and `--bg`), for the installed app's title bar and splash. */
const THEME_COLOR = "#0f766e";
const BACKGROUND_COLOR = "#f4f6f8";

/**
 * The demo as an installable offline app: a web app manifest, and a Workbox service worker that
 * precaches the whole build (Automerge's wasm included), so a device that opened the demo once loads it
 * without a network. `registerType: "prompt"`: a new version waits until the person accepts it
 * (update-prompt.tsx) rather than swapping code under an open form. `vite dev` gets no service worker
 * (the plugin's default): a cached build would hide the code being edited.
 */
function demoPwa() {
  return VitePWA({
    registerType: "prompt",
    // update-prompt.tsx registers through `virtual:pwa-register/react`; an injected inline script
    // would also be refused by the relay's Content-Security-Policy (script-src 'self').
    injectRegister: false,
    manifest: {
      name: "Shoal clinic demo",
      short_name: "Shoal clinic",
      description: "A local-first patient list that works offline and syncs through a Shoal relay.",
      id: "/",
      start_url: "/",
      scope: "/",
      display: "standalone",
      theme_color: THEME_COLOR,
      background_color: BACKGROUND_COLOR,
      icons: [
        { src: "icon.svg", sizes: "any", type: "image/svg+xml" },
        { src: "icon-192.png", sizes: "192x192", type: "image/png" },
        { src: "icon-512.png", sizes: "512x512", type: "image/png" },
        // The artwork keeps its glyph inside the central safe zone, so launchers may crop it.
        { src: "icon-512.png", sizes: "512x512", type: "image/png", purpose: "maskable" },
      ],
    },
    workbox: {
      // The manifest and its icons are added by the plugin itself.
      globPatterns: ["**/*.{html,js,css,wasm}"],
      // Automerge's wasm is 3.6 MB, over Workbox's 2 MiB default: without this it would be left out
      // and the app would not start offline.
      maximumFileSizeToCacheInBytes: 8 * 1024 * 1024,
      // Routing is in the fragment, so the app is only ever `/`; other paths on the relay's origin
      // (the e2e harness under /harness/, /sync, /healthz) are not the demo's and go to the network.
      navigateFallback: "index.html",
      navigateFallbackAllowlist: [/^\/(?:index\.html)?(?:\?.*)?$/],
      // The first install takes over the open page, so it works offline without a reload; an update
      // still waits for the prompt (no skipWaiting).
      clientsClaim: true,
      cleanupOutdatedCaches: true,
    },
  });
}

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
    // The service worker and manifest are the demo's only, not the harness page's.
    plugins: harness ? [react(), shoal()] : [react(), shoal(), demoPwa()],
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
          include: [
            "client/src/**/*.test.ts",
            "sync-server/src/**/*.test.ts",
            "demo-app/src/**/*.test.ts",
            // The bench's and load test's pure helpers (charts, load summaries).
            "scripts/*.test.ts",
          ],
          environment: "node",
          setupFiles: ["client/test/setup-fake-indexeddb.ts"],
          // Vitest's 5 s default is a hang guard, not a speed check, and on 2 shared cores several unit
          // tests (large frames, seeded property runs) took 3-5 s in CI; one went over it.
          testTimeout: 30_000,
        },
      },
      {
        ...sourceResolution,
        test: {
          name: "integration",
          include: ["client/test/**/*.test.ts", "sync-server/test/**/*.test.ts"],
          environment: "node",
          // The relay CLI bundled once for the run: each relay process then starts without transpiling
          // its sources (sync-server/test/relay-bundle.ts).
          globalSetup: ["sync-server/test/relay-bundle-setup.ts"],
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
