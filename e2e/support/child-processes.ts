import { spawn, type ChildProcess } from "node:child_process";

/** Options of `runCommand` and `startServer`. */
export interface CommandOptions {
  cwd: string;
  /** Fails (and kills the command) past this many milliseconds. */
  timeoutMs: number;
  env?: NodeJS.ProcessEnv;
}

/**
 * The environment for a command run from a test: the test's own, minus the `npm_*` variables that an
 * enclosing `npm test` sets for its scripts (workspace, package name, lifecycle event), which would make
 * an `npm` started here act on the repository instead of the directory it runs in.
 */
export function cleanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (/^npm_/i.test(key) && !/^npm_config_(cache|userconfig)$/i.test(key)) continue;
    env[key] = value;
  }
  return { ...env, NO_COLOR: "1", FORCE_COLOR: "0", ...extra };
}

/**
 * Runs a command to completion and resolves with its stdout; rejects with its exit status and output
 * when it fails or outlives `timeoutMs` (it is killed then).
 */
export function runCommand(
  command: string,
  args: readonly string[],
  options: CommandOptions,
): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: options.cwd, env: options.env ?? cleanEnv(), stdio: "pipe" });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    const describe = (): string => `${command} ${args.join(" ")} (in ${options.cwd})`;
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`${describe()} took over ${options.timeoutMs} ms\n${stdout}\n${stderr}`));
    }, options.timeoutMs);
    child.on("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(stdout);
      else reject(new Error(`${describe()} failed (${signal ?? `exit ${code}`})\n${stdout}\n${stderr}`));
    });
  });
}

/** A long-running process started by `startServer`. */
export interface RunningServer {
  /** The match of the `ready` pattern in its output. */
  ready: RegExpExecArray;
  /** Everything it printed so far (for failure messages). */
  output(): string;
  /** SIGTERM, then SIGKILL if it has not exited within 5 s; resolves once it exited. */
  stop(): Promise<void>;
}

/**
 * Starts a server process and resolves once a line of its stdout or stderr matches `ready`; rejects
 * (and kills it) if it exits first or `timeoutMs` passes. Started directly, not through a shell or npx,
 * so the PID signalled on `stop` is the server's own.
 */
export function startServer(
  command: string,
  args: readonly string[],
  options: CommandOptions & { ready: RegExp },
): Promise<RunningServer> {
  const child = spawn(command, args, { cwd: options.cwd, env: options.env ?? cleanEnv(), stdio: "pipe" });
  let output = "";
  const server = (ready: RegExpExecArray): RunningServer => ({
    ready,
    output: () => output,
    stop: () => stopProcess(child),
  });
  return new Promise((resolve, reject) => {
    let settled = false;
    const fail = (reason: string): void => {
      settled = true;
      clearTimeout(timer);
      child.kill("SIGKILL");
      reject(new Error(`${command} ${args.join(" ")}: ${reason}\n${output}`));
    };
    const timer = setTimeout(() => fail(`not ready within ${options.timeoutMs} ms`), options.timeoutMs);
    const onData = (chunk: Buffer): void => {
      output += chunk.toString();
      if (settled) return;
      // Whole lines only, so a chunk boundary cannot cut the pattern in half.
      const match = options.ready.exec(output.slice(0, output.lastIndexOf("\n") + 1));
      if (!match) return;
      settled = true;
      clearTimeout(timer);
      child.off("exit", onExit);
      resolve(server(match));
    };
    const onExit = (code: number | null, signal: NodeJS.Signals | null): void =>
      fail(`exited before it was ready (${signal ?? `exit ${code}`})`);
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.once("exit", onExit);
    child.once("error", (error) => fail(error.message));
  });
}

/** Stops a child: SIGTERM, SIGKILL after 5 s; resolves once it has exited. */
function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const kill = setTimeout(() => child.kill("SIGKILL"), 5_000);
    child.once("exit", () => {
      clearTimeout(kill);
      resolve();
    });
    child.kill("SIGTERM");
  });
}
