import { copyFileSync, existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const SERVER = fileURLToPath(new URL("../", import.meta.url));
const CLI = join(SERVER, "src", "cli.ts");

/**
 * The environment variable through which a test run's global setup (relay-bundle-setup.ts) tells the
 * test files where it bundled the relay. Not `SHOAL_*`: tests that clear the relay's own variables
 * before starting one must not clear this.
 */
export const RELAY_BUNDLE_ENV = "RELAY_TEST_BUNDLE";

/**
 * Bundles the relay CLI from its sources into `dir` as plain JavaScript for Node: `dir/dist/cli.js`,
 * `dir/dist/verify-worker.js` (the verify pool starts it from next to its own module, as in the
 * published build) and a copy of sync-server/package.json at `dir/package.json` (`relayVersion` reads
 * `../package.json`; it also makes the `.js` files ES modules). The workspace's own packages
 * (`@shoal/client/...`) are bundled from their TypeScript sources, as `--conditions=shoal-source` makes
 * tsx load them; every other package stays an import, resolved at run time from the repository's
 * node_modules (native better-sqlite3, ioredis, hono), so `dir` must be inside the repository.
 *
 * Why: `node --import tsx sync-server/src/cli.ts` transpiles the relay's module graph at every start,
 * and integration tests start hundreds of relays. The bundle is the same code, built once per test
 * run (never committed, never reused across runs), so an edited source is what the next run starts.
 *
 * @example
 * await buildRelayBundle(join(root, "node_modules", ".cache", "shoal-relay-test"));
 */
export async function buildRelayBundle(dir: string): Promise<string> {
  const dist = join(dir, "dist");
  mkdirSync(dist, { recursive: true });
  copyFileSync(join(SERVER, "package.json"), join(dir, "package.json"));
  await build({
    entryPoints: [CLI, join(SERVER, "src", "verify-worker.ts")],
    outdir: dist,
    outbase: join(SERVER, "src"),
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    conditions: ["shoal-source"],
    // Every import the sources wrote is kept, whatever a package.json says of side effects.
    ignoreAnnotations: true,
    logLevel: "error",
    plugins: [
      {
        name: "external-packages-but-shoal",
        setup(b) {
          // Bare specifiers other than the workspace's stay imports (esbuild's `packages: "external"`
          // would also keep @shoal/client external, which then resolves to its unbuilt dist/).
          b.onResolve({ filter: /^[^./]/ }, (args) =>
            args.path.startsWith("@shoal/") ? undefined : { path: args.path, external: true },
          );
        },
      },
    ],
  });
  return join(dist, "cli.js");
}

/**
 * The Node arguments that run the relay CLI: the bundle of this test run when its global setup made
 * one, otherwise the sources through tsx (scripts outside vitest, such as the load test).
 *
 * @example
 * spawn(process.execPath, [...relayCliArgs(), "--port", "0"]);
 */
export function relayCliArgs(): string[] {
  const bundle = process.env[RELAY_BUNDLE_ENV];
  if (bundle !== undefined && bundle !== "") {
    if (!existsSync(bundle)) throw new Error(`${RELAY_BUNDLE_ENV} names a missing file: ${bundle}`);
    return ["--conditions=shoal-source", bundle];
  }
  return ["--conditions=shoal-source", "--import", "tsx", CLI];
}
