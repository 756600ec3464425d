// `npm start`: build the demo app, then serve it from a real relay on 127.0.0.1:8787 (env PORT overrides;
// PORT=0 picks a free port and the printed URL carries the real one). The relay keeps its data in
// ./relay-data (env SHOAL_RELAY_DATA overrides), so a restart keeps what devices uploaded.
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { buildDemo } from "./build.mjs";

const root = fileURLToPath(new URL("..", import.meta.url));
const port = process.env.PORT ?? "8787";
const dataDir = process.env.SHOAL_RELAY_DATA ?? "./relay-data";
const READY_TIMEOUT_MS = 30_000;

await buildDemo();

// Node itself (not npx) runs the relay, so the child PID is the server and a signal to it stops it.
const relay = spawn(
  process.execPath,
  [
    // "shoal-source": @shoal/client resolves to its TypeScript sources, as everywhere in the repository.
    "--conditions=shoal-source",
    "--import",
    "tsx",
    "sync-server/src/cli.ts",
    ...["--port", port, "--host", "127.0.0.1", "--store", "sqlite"],
    ...["--data", dataDir, "--static", "dist/demo-app"],
  ],
  { cwd: root, stdio: ["ignore", "pipe", "inherit"] },
);

const timeout = setTimeout(() => {
  console.error(`start: the relay printed no URL within ${READY_TIMEOUT_MS / 1000} s; stopping it.`);
  relay.kill("SIGTERM");
  process.exitCode = 1;
}, READY_TIMEOUT_MS);

let announced = false;
let stopping = false;
let pending = "";
relay.stdout.setEncoding("utf8");
relay.stdout.on("data", (chunk) => {
  process.stdout.write(chunk);
  if (announced) return;
  // Match whole lines only: a chunk boundary could otherwise cut the port in half.
  const lines = (pending + chunk).split("\n");
  pending = lines.pop() ?? "";
  const url = lines.map((line) => /http:\/\/127\.0\.0\.1:\d+/.exec(line)?.[0]).find(Boolean);
  if (url) {
    announced = true;
    clearTimeout(timeout);
    console.log(`Shoal demo: open ${url}/`);
  }
});

relay.on("exit", (code, signal) => {
  clearTimeout(timeout);
  if (!announced) console.error(`start: the relay exited before it was ready (${signal ?? `exit ${code}`}).`);
  process.exit(code ?? (stopping ? 0 : 1));
});

// Ctrl-C reaches the relay too (same process group); forwarding covers `kill <pid of npm start>`.
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => {
    stopping = true;
    relay.kill("SIGTERM");
  });
}
