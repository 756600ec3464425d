// `npm run loadtest`: K simulated devices (raw WebSocket clients speaking the Shoal protocol with
// pre-sealed opaque commits) against one relay on the embedded sqlite store, then two relays on one
// Redis, then two relays on a local 3-master Redis Cluster. Prints commits/s, fan-out latency and per-process CPU and memory, writes JSON to
// bench/results/loadtest-<timestamp>.json, and asserts nothing about time. Options: --help.
// The work lives in TypeScript under scripts/loadtest/; tsx's loader runs it without a build step,
// with `--conditions=shoal-source` (package.json) so that @shoal/client resolves to its sources too.
import { register } from "tsx/esm/api";

register();
await import("./loadtest/main.ts");
