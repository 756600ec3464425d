import { readFileSync } from "node:fs";

let cached: string | undefined;

/**
 * The version of `@shoal/sync-server` from its package.json, read once: what `--version` prints and
 * `shoal_build_info{version}` carries. The file sits one level above this module in the source tree
 * and in a build beside it (`dist/`), so the same relative path serves both.
 *
 * @example
 * relayVersion(); // "0.1.0"
 */
export function relayVersion(): string {
  cached ??= (
    JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string }
  ).version;
  return cached;
}
