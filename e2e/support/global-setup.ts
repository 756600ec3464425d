import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { buildRelayBundle, RELAY_BUNDLE_ENV } from "../../sync-server/test/relay-bundle.ts";
import { PACKS_ENV, packInBackground, packInBackgroundThisRun } from "./packed-packages.ts";

const repoRoot = fileURLToPath(new URL("../..", import.meta.url));

/**
 * Bundles the relay CLI once for this Playwright run (sync-server/test/relay-bundle.ts says why): the
 * specs' own relays (support/relay-process.ts, one or more per test) then start without transpiling
 * the relay's sources each time. Workers inherit the environment variable that names the bundle; the
 * returned function removes it when the run ends.
 *
 * It also starts `npm pack` of both packages in the background when package-install.spec.ts runs after other specs
 * (support/packed-packages.ts says why); the end of the run waits for that packing and removes it.
 */
export default async function globalSetup(): Promise<() => Promise<void>> {
  // Inside the repository, so the bundle's package imports resolve from its node_modules.
  const cache = join(repoRoot, "node_modules", ".cache");
  mkdirSync(cache, { recursive: true });
  const dir = mkdtempSync(join(cache, "shoal-relay-e2e-"));
  let packing: Promise<void> = Promise.resolve();
  if (packInBackgroundThisRun()) {
    const packs = join(dir, "packs");
    process.env[PACKS_ENV] = packs;
    packing = packInBackground(packs);
  }
  process.env[RELAY_BUNDLE_ENV] = await buildRelayBundle(dir);
  return async () => {
    await packing;
    rmSync(dir, { recursive: true, force: true });
  };
}
