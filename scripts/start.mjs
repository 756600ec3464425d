// `npm start`: build the demo app, then serve it from a real relay on 127.0.0.1:8787 (env PORT overrides;
// PORT=0 picks a free port and the printed URL carries the real one). The relay keeps its data in
// ./relay-data (env SHOAL_RELAY_DATA overrides), so a restart keeps what devices uploaded.
// `npm start -- --host 0.0.0.0` (or SHOAL_HOST) serves it to other devices of the network too, and
// `-- --port <n>` picks the port.
import { spawn } from "node:child_process";
import { networkInterfaces } from "node:os";
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import { buildDemo } from "./build.mjs";

const root = fileURLToPath(new URL("..", import.meta.url));
const { values: args } = parseArgs({
  options: { host: { type: "string" }, port: { type: "string" } },
  strict: true,
});
const port = args.port ?? process.env.PORT ?? "8787";
const host = args.host ?? process.env.SHOAL_HOST ?? "127.0.0.1";
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
    ...["--port", port, "--host", host, "--store", "sqlite"],
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
  const listening = lines.map((line) => /"url":"(https?:\/\/[^"]+)"/.exec(line)?.[1]).find(Boolean);
  if (listening) {
    announced = true;
    clearTimeout(timeout);
    const port = new URL(listening).port;
    const local =
      isLoopback(host) || host === "0.0.0.0" || host === "::" ? `http://127.0.0.1:${port}` : listening;
    console.log(`Shoal demo: open ${local}/`);
    if (host === "0.0.0.0" || host === "::") {
      for (const address of lanAddresses())
        console.log(`  from another device of this network: http://${address}:${port}/`);
      console.log(
        "  (plain http from another address has no WebCrypto, so that device works but does not sync:" +
          ' see "Trying the demo from another device" in the README for https)',
      );
    }
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

function isLoopback(h) {
  return h === "localhost" || h === "::1" || h.startsWith("127.");
}

/** This machine's IPv4 addresses other devices of the network can reach. */
function lanAddresses() {
  return Object.values(networkInterfaces())
    .flat()
    .filter((i) => i && i.family === "IPv4" && !i.internal)
    .map((i) => i.address);
}
