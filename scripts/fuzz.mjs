#!/usr/bin/env node
// Runs the convergence fuzzer outside vitest: `npm run fuzz -- --seeds 500 --minutes 10`, or `--seed 1234`.
// Hostile mode (issue 12): add `--hostile [--devices N]` and/or `--bit-flips P` (see client/test/fuzz/fuzz-cli.ts).
import { spawnSync } from "node:child_process";
const r = spawnSync(
  process.execPath,
  ["--conditions=shoal-source", "--import", "tsx", "client/test/fuzz/fuzz-cli.ts", ...process.argv.slice(2)],
  { stdio: "inherit" },
);
process.exit(r.status ?? 1);
