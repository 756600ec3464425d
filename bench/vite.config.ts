import { fileURLToPath } from "node:url";
import { defaultClientConditions, defineConfig } from "vite";

const fromRoot = (path: string): string => fileURLToPath(new URL(path, import.meta.url));

/**
 * The bench page (bench/page) built into dist/bench-site, which the relay serves with --static so the
 * page and the relay share an origin. Built by `node scripts/build.mjs --bench` (and by `npm run bench`).
 */
export default defineConfig({
  root: fromRoot("./page"),
  base: "/",
  logLevel: "warn",
  // @shoal/client from its TypeScript sources, as everywhere in the repository (see ../vite.config.ts).
  resolve: { conditions: ["shoal-source", ...defaultClientConditions] },
  // Vite's dependency pre-bundler cannot follow Automerge's wasm import.
  optimizeDeps: { exclude: ["@automerge/automerge"] },
  build: {
    target: "es2022",
    outDir: fromRoot("../dist/bench-site"),
    emptyOutDir: true,
    chunkSizeWarningLimit: 8192,
  },
});
