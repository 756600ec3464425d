import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { createInterface } from "node:readline";
import { relayCliArgs } from "./relay-bundle.ts";

const REPO = fileURLToPath(new URL("../../", import.meta.url));

/** A relay child process started from the real CLI on a free port. */
export interface RelayProcess {
  url: string;
  wsUrl: string;
  child: ChildProcess;
  /** Everything the process wrote to stderr so far (its log lines). */
  stderr(): string;
  /** Sends a signal and resolves with the exit code (or signal name) once the process is gone. */
  stop(signal?: NodeJS.Signals): Promise<number | string>;
}

/**
 * Starts the relay CLI (`node --import tsx sync-server/src/cli.ts`, or under vitest the same sources
 * bundled once for the run: relay-bundle.ts) with `--port 0 ...args` and resolves once it printed its
 * `listening` JSON line (no sleeps: the line is the readiness signal). `SHOAL_RELAY_NODE_ARGS` in the
 * environment adds flags for Node itself, space-separated: profiling a relay under the load test is
 * `SHOAL_RELAY_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" npm run loadtest -- --only sqlite`
 * (NODE_OPTIONS would profile the load test's own processes too). The profile is written when the
 * relay stops on SIGTERM.
 *
 * @example
 * const relay = await startRelayProcess(["--data", dir]);
 */
export async function startRelayProcess(args: string[]): Promise<RelayProcess> {
  const child = spawn(process.execPath, [...nodeArgs(), ...relayCliArgs(), "--port", "0", ...args], {
    cwd: REPO,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let err = "";
  child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
  const exited = once(child, "exit");
  const lines = createInterface({ input: child.stdout! });
  const url = await new Promise<string>((resolve, reject) => {
    lines.on("line", (line) => {
      try {
        const msg = JSON.parse(line) as { event?: string; url?: string };
        if (msg.event === "listening" && msg.url) resolve(msg.url);
      } catch {
        // not our line
      }
    });
    void exited.then(() => reject(new Error(`relay exited before listening:\n${err}`)));
  });
  return {
    url,
    wsUrl: url.replace(/^http/, "ws"),
    child,
    stderr: () => err,
    stop: async (signal = "SIGTERM") => {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode ?? child.signalCode!;
      child.kill(signal);
      const [code, sig] = (await exited) as [number | null, NodeJS.Signals | null];
      return code ?? sig ?? "unknown";
    },
  };
}

function nodeArgs(): string[] {
  return (process.env.SHOAL_RELAY_NODE_ARGS ?? "").split(" ").filter((a) => a !== "");
}
