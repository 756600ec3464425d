// `npm run loadtest`: K simulated devices (raw WebSocket clients speaking the Shoal protocol with
// signed opaque commits, run in child processes of their own) against one relay on the embedded sqlite
// store, two sqlite relays with disjoint spaces, two relays on one Redis, one space's fan-out, and
// 10,000 idle sockets. Prints commits/s, fan-out latency and per-process CPU and memory, writes JSON to
// bench/results/loadtest-<timestamp>.json, and asserts nothing about time. Options: --help.
// The work lives in TypeScript under scripts/loadtest/; tsx's loader runs it without a build step,
// with `--conditions=shoal-source` (package.json) so that @shoal/client resolves to its sources too.
import { register } from "tsx/esm/api";

register();
await import("./loadtest/main.ts");
