import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { relayCliArgs } from "../../sync-server/test/relay-bundle.ts";

const repoRoot = fileURLToPath(new URL("../..", import.meta.url));

/**
 * A relay process of its own for one spec, serving the e2e site (built by the config's webServer into
 * dist/e2e-site) with a sqlite store in a temporary directory. It can be stopped and started again on
 * the same port: a real network cut for the pages it served, which keep their origin and reconnect to
 * the same URL, and the sqlite store keeps what it had acknowledged.
 */
export class RelayProcess {
  readonly dataDir = mkdtempSync(join(tmpdir(), "shoal-demo-relay-"));
  /**
   * The directory served with `--static` (relative to the repository, or absolute), read at each
   * `start`: a spec can restart the relay on a changed build, as a deployment of a new version does.
   */
  staticDir = "dist/e2e-site";
  #child: ChildProcess | null = null;
  #port = 0;

  /** The page origin, e.g. `http://127.0.0.1:41237` (known after the first `start`). */
  get url(): string {
    if (this.#port === 0) throw new Error("The relay has not been started yet.");
    return `http://127.0.0.1:${this.#port}`;
  }

  get running(): boolean {
    return this.#child !== null;
  }

  /** Starts the relay (on a free port the first time, on the same port afterwards). */
  async start(): Promise<void> {
    if (this.#child) return;
    // `node` rather than npx, so the PID we signal is the relay itself (TOOLCHAIN.md): the relay bundled
    // once for the run by global-setup.ts, or its sources through `--import tsx` without one.
    const child = spawn(
      process.execPath,
      [
        ...relayCliArgs(),
        ...["--port", String(this.#port), "--host", "127.0.0.1"],
        ...["--store", "sqlite", "--data", this.dataDir, "--static", this.staticDir, "--quiet"],
      ],
      { cwd: repoRoot, stdio: ["ignore", "pipe", "pipe"] },
    );
    this.#child = child;
    let stderr = "";
    child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    this.#port = await new Promise<number>((resolve, reject) => {
      let stdout = "";
      const onExit = (code: number | null) =>
        reject(new Error(`relay exited (${code}) before listening: ${stderr}`));
      child.once("exit", onExit);
      child.stdout!.on("data", (chunk: Buffer) => {
        stdout += chunk.toString();
        const line = stdout.split("\n").find((l) => l.includes('"listening"'));
        if (!line) return;
        child.off("exit", onExit);
        resolve((JSON.parse(line) as { port: number }).port);
      });
    }).catch((e: unknown) => {
      this.#child = null;
      throw e;
    });
  }

  /** Stops the relay and waits until the process has exited (its port is free again). */
  async stop(): Promise<void> {
    const child = this.#child;
    if (!child) return;
    this.#child = null;
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
    await exited;
    clearTimeout(timer);
  }

  /** Stops the relay and removes its data. */
  async dispose(): Promise<void> {
    await this.stop();
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}
