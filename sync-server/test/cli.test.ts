// The relay's command line as an operator meets it: the real CLI in a child process, loopback only.
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { readFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { relayCliArgs } from "./relay-bundle.ts";

const REPO = fileURLToPath(new URL("../../", import.meta.url));
const VERSION = (
  JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string }
).version;
// Bounds a child that should have exited on its own; never reached when the CLI behaves.
const EXIT_TIMEOUT_MS = 20_000;

const children: ChildProcess[] = [];
const servers: Server[] = [];
afterEach(async () => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

/** The environment without any SHOAL_* or PORT of the machine running the tests. */
function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith("SHOAL_") || k === "PORT") delete env[k];
  return { ...env, ...extra };
}

function spawnCli(args: string[], env: Record<string, string> = {}): ChildProcess {
  const child = spawn(process.execPath, [...relayCliArgs(), ...args], {
    cwd: REPO,
    env: cleanEnv(env),
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.push(child);
  return child;
}

/** Runs the CLI to its exit. */
async function runCli(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number | null; out: string; err: string }> {
  const child = spawnCli(args, env);
  let out = "";
  let err = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
  const timer = setTimeout(() => child.kill("SIGKILL"), EXIT_TIMEOUT_MS);
  // "close", not "exit": the pipes may still hold output when the process has exited.
  const [code] = (await once(child, "close")) as [number | null];
  clearTimeout(timer);
  return { code, out, err };
}

/** Starts the CLI and resolves with its `listening` line once printed. */
async function listening(child: ChildProcess): Promise<{ port: number; url: string }> {
  const lines = createInterface({ input: child.stdout! });
  const exited = once(child, "exit");
  return new Promise((resolve, reject) => {
    lines.on("line", (line) => {
      const msg = JSON.parse(line) as { event?: string; port: number; url: string };
      if (msg.event === "listening") resolve(msg);
    });
    void exited.then(() => reject(new Error("the relay exited before listening")));
  });
}

/** A port held by another listener on 127.0.0.1. */
async function takenPort(): Promise<number> {
  const server = createServer();
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return (server.address() as { port: number }).port;
}

/** A port free a moment ago (the kernel does not hand it out again at once). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as { port: number };
  await new Promise((r) => server.close(r));
  return port;
}

describe("shoal-relay command line (real process)", () => {
  it("prints the usage for -h and --help and exits 0", async () => {
    for (const flag of ["-h", "--help"]) {
      const { code, out, err } = await runCli([flag]);
      expect(code).toBe(0);
      expect(out).toMatch(/^Usage: shoal-relay \[options\]\n/);
      expect(out).toContain("SHOAL_<OPTION>");
      expect(err).toBe("");
    }
  });

  it("prints the package version for --version and exits 0", async () => {
    const { code, out } = await runCli(["--version"]);
    expect(code).toBe(0);
    expect(out).toBe(`${VERSION}\n`);
  });

  it("answers a bad argument with its message and the usage, exit 2", async () => {
    const { code, out, err } = await runCli(["--prot", "8787"]);
    expect(code).toBe(2);
    expect(out).toBe("");
    expect(err.split("\n")[0]).toMatch(/^shoal-relay: Unknown option '--prot'/);
    expect(err.split("\n")[1]).toBe("Usage: shoal-relay [options]");
  });

  it("reports a runtime error (port taken) in one line without the usage, exit 1", async () => {
    const port = await takenPort();
    const { code, err } = await runCli(["--store", "memory", "--quiet"], { SHOAL_PORT: String(port) });
    expect(code).toBe(1);
    expect(err).toMatch(/^shoal-relay: .*EADDRINUSE.*\n$/);
    expect(err.split("\n").length).toBe(2);
    expect(err).not.toContain("Usage");
  });

  it("listens on PORT when neither --port nor SHOAL_PORT is given", async () => {
    const port = await freePort();
    const child = spawnCli(["--store", "memory", "--quiet"], { PORT: String(port) });
    const line = await listening(child);
    expect(line.port).toBe(port);
    expect((await fetch(`${line.url}/healthz`)).status).toBe(200);
    child.kill("SIGTERM");
    expect((await once(child, "exit"))[0]).toBe(0);
  });

  it("reads on/off options from the environment: SHOAL_QUIET=1 silences the logs", async () => {
    const logs = async (env: Record<string, string>) => {
      const child = spawnCli(["--store", "memory", "--port", "0"], env);
      let err = "";
      child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
      await listening(child);
      child.kill("SIGTERM");
      await once(child, "close");
      return err;
    };
    expect(await logs({})).toContain('"event":"relay.stopping"');
    expect(await logs({ SHOAL_QUIET: "1" })).toBe("");
  });
});
