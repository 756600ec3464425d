// A Node child process that announces itself with a JSON `listening` line on stdout (the relay, the
// peer's sync server), shared by `npm run bench` and `npm run bench:profile`.
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";

const children = new Set();
process.on("exit", () => {
  for (const c of children) c.kill("SIGKILL");
});

/**
 * Spawns `node <args>` in `cwd` and resolves with `{ child, info, log }` once it prints its JSON
 * `listening` line (`info` is that line); rejects if it exits first or says nothing for 30 s. Every
 * child still running is killed when this process exits.
 */
export function startNode(cwd, args, label) {
  const child = spawn(process.execPath, args, { cwd, stdio: ["ignore", "pipe", "pipe"] });
  children.add(child);
  const log = [];
  child.stderr.on("data", (d) => {
    log.push(String(d));
    if (log.length > 200) log.shift();
  });
  child.on("exit", () => children.delete(child));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${label}: no listening line in 30 s\n${log.join("")}`)),
      30_000,
    );
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`${label} exited with ${code} before listening\n${log.join("")}`));
    });
    createInterface({ input: child.stdout }).on("line", (line) => {
      try {
        const msg = JSON.parse(line);
        if (msg.event === "listening") {
          clearTimeout(timer);
          resolve({ child, info: msg, log });
        }
      } catch {
        // not JSON: ignore
      }
    });
  });
}

/** Stops a child from `startNode`: SIGTERM, then SIGKILL after 5 s. */
export async function stopNode(proc) {
  if (!proc || proc.child.exitCode !== null) return;
  const exited = new Promise((r) => proc.child.once("exit", r));
  proc.child.kill("SIGTERM");
  const timer = setTimeout(() => proc.child.kill("SIGKILL"), 5_000);
  await exited;
  clearTimeout(timer);
}
