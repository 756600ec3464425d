// `npm start` as a person runs it: `node scripts/start.mjs` builds the demo, starts the relay and prints
// `Shoal demo: open http://...`. This test runs the real script on a free port with its own data
// directory, loads the page and its main script over HTTP, then stops it with SIGTERM.
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";

const REPO = fileURLToPath(new URL("../../", import.meta.url));
// The Vite build of the demo runs first; on a 2-core machine it can take a good part of a minute.
const READY_TIMEOUT_MS = 100_000;
const EXIT_TIMEOUT_MS = 10_000;

/**
 * The environment of a person's shell: without what vitest sets (`VITEST*`, `NODE_ENV=test`), since
 * vite.config.ts leaves out the app build settings when it sees `VITEST`, and the child's Vite build
 * would then find no entry to build.
 */
function userEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const k of Object.keys(env)) if (k === "VITEST" || k.startsWith("VITEST_")) delete env[k];
  if (env.NODE_ENV === "test") delete env.NODE_ENV;
  return { ...env, ...extra };
}

const dataDir = mkdtempSync(join(tmpdir(), "shoal-npm-start-"));
let child: ChildProcess | undefined;
let output = "";

/** Resolves with the URL of the `Shoal demo: open <url>` line; rejects if the script exits or stays silent. */
function announcedUrl(proc: ChildProcess): Promise<string> {
  const lines = createInterface({ input: proc.stdout! });
  return new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`no "open http://..." line within ${READY_TIMEOUT_MS} ms:\n${output}`)),
      READY_TIMEOUT_MS,
    );
    lines.on("line", (line) => {
      output += line + "\n";
      const url = /^Shoal demo: open (http:\/\/127\.0\.0\.1:\d+)\/$/.exec(line)?.[1];
      if (url) {
        clearTimeout(timer);
        resolve(url);
      }
    });
    proc.once("exit", (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`start.mjs exited (${signal ?? code}) before printing its URL:\n${output}`));
    });
  });
}

/** Sends SIGTERM and resolves with the exit code (or signal name); forces a kill if it hangs. */
async function stop(proc: ChildProcess): Promise<number | string> {
  if (proc.exitCode !== null || proc.signalCode !== null) return proc.exitCode ?? proc.signalCode!;
  const exited = once(proc, "exit") as Promise<[number | null, NodeJS.Signals | null]>;
  proc.kill("SIGTERM");
  const timer = setTimeout(() => proc.kill("SIGKILL"), EXIT_TIMEOUT_MS);
  const [code, signal] = await exited;
  clearTimeout(timer);
  return code ?? signal ?? "unknown";
}

afterAll(async () => {
  if (child) await stop(child);
  rmSync(dataDir, { recursive: true, force: true });
});

describe("npm start", () => {
  it("builds the demo, serves it on the port it prints, and stops on SIGTERM", async () => {
    const relayDataBefore = existsSync(join(REPO, "relay-data"));
    child = spawn(process.execPath, ["scripts/start.mjs"], {
      cwd: REPO,
      env: userEnv({ PORT: "0", SHOAL_RELAY_DATA: dataDir }),
      stdio: ["ignore", "pipe", "pipe"],
    });
    child.stderr!.on("data", (d: Buffer) => (output += d.toString()));
    const url = await announcedUrl(child);
    expect(url).not.toMatch(/:0$/);

    const page = await fetch(`${url}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toMatch(/text\/html/);
    const html = await page.text();
    expect(html).toContain('<div id="root"></div>');
    const script = /<script[^>]*type="module"[^>]*src="([^"]+\.js)"/.exec(html)?.[1];
    expect(script, `no module script tag in:\n${html}`).toBeDefined();

    const asset = await fetch(new URL(script!, `${url}/`));
    expect(asset.status).toBe(200);
    expect(asset.headers.get("content-type")).toMatch(/javascript/);
    expect((await asset.text()).length).toBeGreaterThan(0);

    // The relay wrote its store where it was told, not into the repository.
    expect(readdirSync(dataDir)).toContain("relay.sqlite");
    expect(existsSync(join(REPO, "relay-data"))).toBe(relayDataBefore);

    expect(await stop(child)).toBe(0);
  }, 120_000);
});
