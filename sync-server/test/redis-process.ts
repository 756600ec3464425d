import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";

/** Where Debian's `redis-server` lives (`.ci/run` installs it); `REDIS_SERVER` overrides it. */
export const REDIS_SERVER = process.env.REDIS_SERVER ?? "/usr/bin/redis-server";

/** Persistence the relay documents as safe (docs/SCALING.md): every write is fsynced before Redis replies. */
export const DURABLE_REDIS_ARGS = ["--appendonly", "yes", "--appendfsync", "always"] as const;

// The line Redis prints once it serves clients (same wording in 6.x and 7.x).
const READY_LINE = "Ready to accept connections";
// How long a start may take before the test is told why (a hung start must not hang the suite).
const START_TIMEOUT_MS = 15_000;

/** A `redis-server` child on a loopback port with its own temporary directory. */
export class RedisProcess {
  readonly port: number;
  readonly dir: string;
  readonly #args: readonly string[];
  #child: ChildProcess | null = null;
  #log = "";

  private constructor(port: number, dir: string, args: readonly string[]) {
    this.port = port;
    this.dir = dir;
    this.#args = args;
  }

  /**
   * Starts a redis-server on a free loopback port with a fresh temp directory, durable by default
   * (`--appendonly yes --appendfsync always`); `args` replace those settings (e.g. to test refusal).
   * Resolves once Redis printed its ready line: no sleeps.
   *
   * @example
   * const redis = await RedisProcess.start();
   * // ... --store redis.url ...
   * await redis.dispose();
   */
  static async start(args: readonly string[] = DURABLE_REDIS_ARGS): Promise<RedisProcess> {
    const dir = mkdtempSync(join(tmpdir(), "shoal-redis-"));
    const redis = new RedisProcess(await freeLoopbackPort(), dir, args);
    live.add(redis);
    await redis.restart();
    return redis;
  }

  /** `redis://127.0.0.1:<port>/0`, stable across restarts. */
  get url(): string {
    return `redis://127.0.0.1:${this.port}/0`;
  }

  get running(): boolean {
    return this.#child !== null;
  }

  /** Process id of the running server (for CPU and memory sampling), or undefined. */
  get pid(): number | undefined {
    return this.#child?.pid;
  }

  /** What every run printed (Redis logs to stdout with `--logfile ""`). */
  get log(): string {
    return this.#log;
  }

  /** Starts the server (again) on the same port and directory, so its AOF is replayed. */
  async restart(): Promise<void> {
    if (this.#child) throw new Error("redis-server is already running");
    const child = spawn(
      REDIS_SERVER,
      [
        "--port",
        String(this.port),
        "--bind",
        "127.0.0.1",
        "--dir",
        this.dir,
        "--logfile",
        "",
        // No RDB snapshots: what survives a restart is what the AOF holds, which is what the relay relies on.
        "--save",
        "",
        "--daemonize",
        "no",
        ...this.#args,
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    this.#child = child;
    const exited = once(child, "exit");
    child.stderr!.on("data", (d: Buffer) => (this.#log += d.toString()));
    void exited.then(() => {
      if (this.#child === child) this.#child = null;
    });
    const lines = createInterface({ input: child.stdout! });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`redis-server did not start:\n${this.#log}`)),
        START_TIMEOUT_MS,
      );
      lines.on("line", (line) => {
        this.#log += line + "\n";
        if (line.includes(READY_LINE)) {
          clearTimeout(timer);
          resolve();
        }
      });
      void exited.then(() => {
        clearTimeout(timer);
        reject(new Error(`redis-server exited before it was ready:\n${this.#log}`));
      });
    });
  }

  /** Sends `signal` (SIGKILL: a crash, nothing flushed on the way out) and waits for the exit. */
  async stop(signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
    const child = this.#child;
    if (!child) return;
    if (child.exitCode === null && child.signalCode === null) {
      const exited = once(child, "exit");
      child.kill(signal);
      await exited;
    }
    if (this.#child === child) this.#child = null;
  }

  /** Kills the server if it runs and deletes its directory. */
  async dispose(): Promise<void> {
    live.delete(this);
    await this.stop("SIGKILL");
    rmSync(this.dir, { recursive: true, force: true });
  }
}

const live = new Set<RedisProcess>();

/** Kills and removes every server started by `RedisProcess.start` and not yet disposed (afterAll). */
export async function disposeAllRedis(): Promise<void> {
  await Promise.all([...live].map((r) => r.dispose()));
}

/**
 * A free loopback port: bound once by the OS, then released for the server to take.
 *
 * @example
 * const port = await freeLoopbackPort();
 */
export async function freeLoopbackPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === "string") throw new Error("no TCP address");
  return address.port;
}
