// `npm run compaction-bytes`: relay bytes of one space with 10,000 records edited 10 times each, before
// and after `db.compact` (issue 16 item 3). A real relay process (SQLite store, its own data directory)
// and one admin device under Node (fake-indexeddb). Prints a table and writes the figures to
// bench/results/compaction-<timestamp>.json (not committed). Heavy: run it alone.
//
//   npm run compaction-bytes                        10,000 records, 10 edits, 100 records per commit
//   npm run compaction-bytes -- --records 2000 --edits 5 --batch 50
import "fake-indexeddb/auto";
import { mkdirSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { measureCompaction } from "../client/test/compaction-bytes.ts";

const { values } = parseArgs({
  options: {
    records: { type: "string", default: "10000" },
    edits: { type: "string", default: "10" },
    batch: { type: "string", default: "100" },
  },
});
const opts = { records: Number(values.records), edits: Number(values.edits), batch: Number(values.batch) };
const f = await measureCompaction({ ...opts, log: (line) => console.error(`  ${line}`) });

const kib = (n) => `${(n / 1024).toFixed(1)} KiB`;
const files = (b) => Object.values(b.files).reduce((n, x) => n + x, 0);
const rows = [
  ["", "before", "after"],
  ["store bytes (shoal_store_bytes)", kib(f.before.store), kib(f.after.store)],
  ["commits with bytes", String(f.before.commits), String(f.after.commits)],
  ["snapshot", kib(f.before.snapshot), kib(f.after.snapshot)],
  ["data dir files (sqlite + wal + shm)", kib(files(f.before)), kib(files(f.after))],
  ["sqlite file after VACUUM", "", kib(f.vacuumed)],
];
console.log(
  `\n${f.records} records x ${f.edits} edits, ${f.batch} records per commit (${f.written} commits), ` +
    `write ${(f.ms.write / 1000).toFixed(1)} s, compact ${(f.ms.compact / 1000).toFixed(1)} s\n`,
);
for (const r of rows) console.log(`${r[0].padEnd(38)}${r[1].padStart(14)}${r[2].padStart(14)}`);
const dir = join(fileURLToPath(new URL("..", import.meta.url)), "bench", "results");
mkdirSync(dir, { recursive: true });
const file = join(dir, `compaction-${new Date().toISOString().replaceAll(":", "-")}-${hostname()}.json`);
writeFileSync(file, JSON.stringify({ date: new Date().toISOString(), ...f }, null, 2));
console.log(`\nwritten to ${file}`);
