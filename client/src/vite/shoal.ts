import type { Plugin, UserConfig } from "vite";

/**
 * The Vite settings an app using `@shoal/client` needs, as one plugin.
 *
 * Vite's dependency pre-bundler cannot follow the WebAssembly import inside `@automerge/automerge`:
 * without this, `vite dev` serves a page that throws on load. Excluding Automerge from pre-bundling lets
 * Vite load its wasm module as it does for source files; `@shoal/client` itself is still pre-bundled
 * and refers to the excluded package. `vite build` needs nothing more: Vite bundles the wasm as an asset.
 *
 * @example
 * // vite.config.ts
 * import react from "@vitejs/plugin-react";
 * import { shoal } from "@shoal/client/vite";
 * import { defineConfig } from "vite";
 *
 * export default defineConfig({ plugins: [react(), shoal()] });
 */
export function shoal(): Plugin {
  return {
    name: "shoal",
    // Returned settings are merged into the app's own: its other `optimizeDeps.exclude` entries stay.
    config(): UserConfig {
      return { optimizeDeps: { exclude: [...AUTOMERGE_PACKAGES] } };
    },
  };
}

/** The packages whose wasm import the pre-bundler must leave alone. */
const AUTOMERGE_PACKAGES = ["@automerge/automerge"] as const;
