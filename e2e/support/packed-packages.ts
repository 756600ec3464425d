import { existsSync, mkdirSync, readFileSync, renameSync, watch, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { cleanEnv, runCommand } from "./child-processes.ts";

const repoRoot = fileURLToPath(new URL("../..", import.meta.url));

/**
 * The environment variable through which global-setup.ts tells package-install.spec.ts where it is
 * packing the packages for this run. Workers inherit it, as they do the relay bundle's.
 */
export const PACKS_ENV = "SHOAL_E2E_PACKS";

/** What `npm pack --json` prints for one package (the fields used here). */
export interface PackResult {
  name: string;
  filename: string;
  integrity: string;
  size: number;
  entryCount: number;
  files: { path: string }[];
}

/** The two tarballs, in `dir`. */
export interface Packs {
  dir: string;
  client: PackResult;
  relay: PackResult;
}

const DONE = "packs.json";
const FAILED = "failed.txt";

/**
 * `npm pack` of both packages into `dir`. The relay first: its `prepack` builds the client and then the
 * relay (which compiles against the client's declarations); the client is then packed from that same
 * fresh build.
 */
export async function packBoth(
  dir: string,
  { timeoutMs = 90_000, lowPriority = false }: { timeoutMs?: number; lowPriority?: boolean } = {},
): Promise<Packs> {
  const pack = async (workspace: string, extra: string[]): Promise<PackResult> => {
    const args = ["pack", "-w", workspace, "--pack-destination", dir, "--json", ...extra];
    // `nice` (coreutils): npm and the tsc builds it starts yield the CPU to the specs.
    const [command, ...rest] = lowPriority ? ["nice", "-n", "10", "npm", ...args] : ["npm", ...args];
    const out = await runCommand(command!, rest, { cwd: repoRoot, timeoutMs, env: cleanEnv() });
    return (JSON.parse(out) as PackResult[])[0]!;
  };
  const relay = await pack("sync-server", []);
  const client = await pack("client", ["--ignore-scripts"]);
  return { dir, client, relay };
}

/**
 * Starts `packBoth(dir)` without waiting for it, for a spec that runs later in this Playwright run: the
 * two tsc builds of `prepack` then overlap the specs before it (one worker leaves a core mostly idle)
 * instead of adding their time to the package-install spec. At a low CPU priority (nice 10), so the
 * specs before it do not slow down: at normal priority, on a machine with no idle core, they took up
 * to twice as long while it ran. The outcome is written to `dir` (renamed into place whole), where
 * `packedPackages` finds it. Resolves once packing has ended either way. Its time limit is a hang
 * guard only: at that priority on a loaded machine it may take minutes.
 */
export function packInBackground(dir: string): Promise<void> {
  mkdirSync(dir, { recursive: true });
  const write = (name: string, text: string): void => {
    writeFileSync(join(dir, `${name}.part`), text);
    renameSync(join(dir, `${name}.part`), join(dir, name));
  };
  return packBoth(dir, { timeoutMs: 600_000, lowPriority: true }).then(
    (packs) => write(DONE, JSON.stringify(packs)),
    (error: unknown) =>
      write(FAILED, error instanceof Error ? (error.stack ?? error.message) : String(error)),
  );
}

/**
 * The packed packages: those global setup is packing for this run (`PACKS_ENV`), once that has ended,
 * or else packed now into `fallbackDir` (a run of that spec alone, or with options global setup did not read,
 * or a background packing that failed: packed again here, its error, if any, is then the spec's).
 * Waits for the outcome file's appearance (a directory watch), not by polling.
 */
export async function packedPackages(fallbackDir: string, timeoutMs: number): Promise<Packs> {
  const dir = process.env[PACKS_ENV];
  if (!dir) return packBoth(fallbackDir);
  await new Promise<void>((resolve, reject) => {
    const ended = (): boolean => existsSync(join(dir, DONE)) || existsSync(join(dir, FAILED));
    const watcher = watch(dir, () => {
      if (ended()) finish();
    });
    const timer = setTimeout(() => {
      watcher.close();
      reject(new Error(`packing the packages in ${dir} did not end within ${timeoutMs} ms`));
    }, timeoutMs);
    function finish(): void {
      clearTimeout(timer);
      watcher.close();
      resolve();
    }
    // Checked after the watch started, so an outcome written in between is not missed.
    if (ended()) finish();
  });
  if (existsSync(join(dir, FAILED))) {
    const why = readFileSync(join(dir, FAILED), "utf8");
    console.log(`npm pack in the background failed; packing again here. It said:\n${why}`);
    return packBoth(fallbackDir);
  }
  return JSON.parse(readFileSync(join(dir, DONE), "utf8")) as Packs;
}

/**
 * Whether the Playwright run that started this process should pack in the background: when it runs
 * package-install.spec.ts after other specs, that is with no file filter on its command line, or with
 * filters among which one names that spec. A run of that spec alone (or of a directory) packs in the
 * spec at normal priority instead (nothing to overlap), and so does a run whose command line this
 * does not read (a --grep, say): `packedPackages` then packs for itself.
 */
export function packInBackgroundThisRun(argv: readonly string[] = process.argv): boolean {
  const test = argv.indexOf("test");
  if (test < 0) return false;
  // Options of `playwright test` that take their value as the next argument.
  const valued = new Set(["-c", "--config", "--output", "--project", "-j", "--workers", "--reporter"]);
  // Options that pick tests by something other than their file.
  const narrowing = new Set(["-g", "--grep", "--grep-invert", "--last-failed", "--only-changed", "--list"]);
  const filters: string[] = [];
  for (let i = test + 1; i < argv.length; i++) {
    const arg = argv[i]!;
    if (narrowing.has(arg.split("=")[0]!)) return false;
    if (valued.has(arg)) i++;
    else if (!arg.startsWith("-")) filters.push(arg);
  }
  if (filters.length === 0) return true;
  const named = filters.filter((f) => f.includes("package-install"));
  return named.length > 0 && named.length < filters.length;
}
