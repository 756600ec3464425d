// `npm run size`: what a minimal app ships. Builds small apps with Vite (production, minified), each one
// entry file: Shoal local-only (openDatabase, insert, a live query), Shoal syncing through a relay (the
// same plus db.sync), Dexie alone, and automerge-repo with IndexedDB storage (with and without its
// WebSocket network adapter). Prints, per app, the JavaScript it loads (the entry chunk and its static
// imports, plus the chunks its calls import dynamically: db.sync's), how much of that at start, the
// JavaScript emitted but never loaded (on-demand chunks it does not use), raw and gzip, and the wasm
// apart. The README's table comes from this.
//
// Usage: node scripts/bundle-size.mjs [--dist] [--json] [--keep]
//   --dist  resolve @shoal/client to its built package (dist/, run `npm run build:packages` first)
//           instead of the sources (the "shoal-source" condition)
//   --json  print one JSON object (apps, chunks with file paths, sizes) instead of the table
//   --keep  keep the build output (its directory is in the JSON) instead of removing it
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { build, defaultClientConditions } from "vite";

const root = fileURLToPath(new URL("..", import.meta.url));

/**
 * The apps, as entry modules. Each does what its row claims and no more. `loads`: the modules an app's
 * calls import dynamically (db.sync loads the sync runner), whose chunks count as loaded.
 */
export const APPS = {
  "shoal-local": `
import { openDatabase } from "@shoal/client";
const db = await openDatabase({ name: "size", collections: { notes: "id, title" } });
await db.notes.insert({ title: "hello" });
db.notes.live((c) => c.orderBy("title")).subscribe((rows) => console.log(rows.length));
`,
  "shoal-relay": `
import { openDatabase } from "@shoal/client";
const db = await openDatabase({ name: "size", collections: { notes: "id, title" } });
await db.notes.insert({ title: "hello" });
db.notes.live((c) => c.orderBy("title")).subscribe((rows) => console.log(rows.length));
db.sync({ relay: "ws://127.0.0.1:8787" });
`,
  dexie: `
import Dexie, { liveQuery } from "dexie";
const db = new Dexie("size");
db.version(1).stores({ notes: "id, title" });
await db.table("notes").add({ id: crypto.randomUUID(), title: "hello" });
liveQuery(() => db.table("notes").orderBy("title").toArray()).subscribe((rows) => console.log(rows.length));
`,
  "automerge-repo-local": `
import { Repo } from "@automerge/automerge-repo";
import { IndexedDBStorageAdapter } from "@automerge/automerge-repo-storage-indexeddb";
const repo = new Repo({ storage: new IndexedDBStorageAdapter("size"), network: [] });
const handle = repo.create({ notes: [] });
handle.on("change", ({ doc }) => console.log(doc.notes.length));
handle.change((d) => d.notes.push({ title: "hello" }));
`,
  "automerge-repo-websocket": `
import { Repo } from "@automerge/automerge-repo";
import { IndexedDBStorageAdapter } from "@automerge/automerge-repo-storage-indexeddb";
import { BrowserWebSocketClientAdapter } from "@automerge/automerge-repo-network-websocket";
const repo = new Repo({
  storage: new IndexedDBStorageAdapter("size"),
  network: [new BrowserWebSocketClientAdapter("ws://127.0.0.1:3030")],
});
const handle = repo.create({ notes: [] });
handle.on("change", ({ doc }) => console.log(doc.notes.length));
handle.change((d) => d.notes.push({ title: "hello" }));
`,
};

/** What `db.sync({ relay })` loads on its first call: the runner module and its static imports. */
const LOADS = { "shoal-relay": [/[\\/]sync[\\/]sync-runner\.(ts|js)$/] };

/** Sizes of one file's bytes: raw and gzip (level 9, as servers precompress). */
function sizes(bytes) {
  return { raw: bytes.length, gzip: gzipSync(bytes, { level: 9 }).length };
}

/**
 * Builds one app into `outDir` and sorts its output: the chunks loaded at start (the entry and its static
 * imports, transitively), the chunks loaded on demand, and the wasm.
 */
async function buildApp(name, source, workDir, dist, loads = []) {
  const dir = join(workDir, name);
  mkdirSync(dir, { recursive: true });
  const entry = join(dir, "main.js");
  writeFileSync(entry, source);
  const outDir = join(dir, "out");
  const result = await build({
    configFile: false,
    root: dir,
    logLevel: "silent",
    resolve: {
      conditions: dist ? [...defaultClientConditions] : ["shoal-source", ...defaultClientConditions],
    },
    build: {
      outDir,
      emptyOutDir: true,
      // es2022 for top-level await, which Automerge's wasm initialisation relies on.
      target: "es2022",
      rollupOptions: { input: entry },
      // Every byte counts here, so nothing is inlined into the JavaScript as base64 behind our back.
      assetsInlineLimit: 0,
      reportCompressedSize: false,
    },
  });
  const output = (Array.isArray(result) ? result : [result]).flatMap((r) => r.output);
  const chunks = new Map(output.filter((o) => o.type === "chunk").map((c) => [c.fileName, c]));
  const initial = new Set();
  const visit = (file) => {
    if (initial.has(file)) return;
    initial.add(file);
    for (const next of chunks.get(file)?.imports ?? []) visit(next);
  };
  for (const c of chunks.values()) if (c.isEntry) visit(c.fileName);
  const atStart = new Set(initial);
  for (const c of chunks.values())
    if (c.isDynamicEntry && loads.some((re) => re.test(c.facadeModuleId ?? ""))) visit(c.fileName);
  const files = output.map((o) => {
    const bytes = Buffer.from(o.type === "chunk" ? o.code : o.source);
    const kind = o.fileName.endsWith(".wasm")
      ? "wasm"
      : o.type !== "chunk"
        ? "asset"
        : atStart.has(o.fileName)
          ? "initial"
          : initial.has(o.fileName)
            ? "loaded"
            : "lazy";
    return { file: join(outDir, o.fileName), name: o.fileName, kind, ...sizes(bytes) };
  });
  const total = (kind) =>
    files
      .filter((f) => f.kind === kind)
      .reduce((sum, f) => ({ raw: sum.raw + f.raw, gzip: sum.gzip + f.gzip }), { raw: 0, gzip: 0 });
  const loaded = total("loaded");
  const start = total("initial");
  return {
    name,
    outDir,
    files,
    initial: start,
    // What the app runs: the JavaScript at start plus what its calls load.
    used: { raw: start.raw + loaded.raw, gzip: start.gzip + loaded.gzip },
    lazy: total("lazy"),
    wasm: total("wasm"),
  };
}

/** Builds every app; returns the measurements (and the directory holding the builds). */
export async function measure({ dist = false, apps = APPS } = {}) {
  const cache = join(root, "node_modules", ".cache");
  mkdirSync(cache, { recursive: true });
  // Inside the repository, so the apps resolve @shoal/client and the other packages from its node_modules.
  const workDir = mkdtempSync(join(cache, "bundle-size-"));
  const results = [];
  for (const [name, source] of Object.entries(apps))
    results.push(await buildApp(name, source, workDir, dist, LOADS[name]));
  return { workDir, source: dist ? "dist" : "sources", apps: results };
}

const kB = (n) => (n / 1000).toFixed(1);

/** The Markdown table the README shows. */
export function table({ apps }) {
  const lines = [
    "| app | JS the app loads (raw / gzip, kB) | of it at start | JS emitted, never loaded | wasm |",
    "| --- | ---: | ---: | ---: | ---: |",
  ];
  for (const a of apps) {
    const pair = (s) => (s.raw === 0 ? "none" : `${kB(s.raw)} / ${kB(s.gzip)}`);
    lines.push(`| ${a.name} | ${pair(a.used)} | ${pair(a.initial)} | ${pair(a.lazy)} | ${pair(a.wasm)} |`);
  }
  return lines.join("\n");
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const args = new Set(process.argv.slice(2));
  const result = await measure({ dist: args.has("--dist") });
  if (args.has("--json")) console.log(JSON.stringify(result, null, 2));
  else {
    console.log(`Minimal apps built with Vite from @shoal/client's ${result.source}:\n`);
    console.log(table(result));
  }
  if (!args.has("--keep")) rmSync(result.workDir, { recursive: true, force: true });
}
