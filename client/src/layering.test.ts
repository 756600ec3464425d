import { readFileSync, readdirSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

// The client's folders are its concepts; this test keeps their imports pointing inward, so the core (a
// local database) never pulls in sync, WebRTC, bundles or tab election, and those stay separate entry
// points (`@shoal/client/sync`, `/peer`, `/bundles`). Reads the sources, no build needed.

const src = dirname(fileURLToPath(import.meta.url));

/** The folder (concept) of a source file; top-level files name themselves. */
function concept(file: string): string {
  const rel = relative(src, file).split("\\").join("/");
  const slash = rel.indexOf("/");
  return slash < 0 ? rel.replace(/\.ts$/, "") : rel.slice(0, slash);
}

/** The layers, innermost first. A folder may import (at run time) only from its own layer or inner ones. */
const LAYERS: readonly (readonly string[])[] = [
  ["types", "errors", "ids", "crypto", "identity", "protocol", "members"],
  // The local replica and its live queries (each imports the other's small pieces).
  // `lock`: the at-rest lock (its Dexie middleware, its key), which the replica is opened with.
  ["live", "replica", "spaces", "lock"],
  // Sealing and opening commits (and the log of what failed to open); the Transport port and adapters;
  // the sync status model, which `db.status` shows even when nothing syncs.
  ["sealing", "transports", "status"],
  ["snapshots", "bundles", "tabs", "audit"],
  // The session and engine: one session per (space, transport), the engine over all spaces, the runner.
  ["sync"],
  // WebRTC peers run sessions of their own over data channels, so they sit outside sync.
  ["peer"],
  // Façades and entry points: they may import anything.
  // (database-types and durable-option: the façade's own types and option check, in files of their own.)
  ["database", "database-types", "durable-option", "lazy-sync", "index", "react", "testing", "vite"],
];

const rank = new Map(LAYERS.flatMap((names, i) => names.map((n) => [n, i] as const)));

/**
 * Imports that point outward, each with its reason. Type-only ones vanish from the JavaScript; the
 * dynamic one is loaded only when asked for, so a relay-only app never downloads WebRTC code.
 */
const OUTWARD: readonly { from: string; to: string; kind: ImportKind; why: string }[] = [
  { from: "status", to: "sync", kind: "type", why: "a transport's status names its session's state" },
  { from: "sync", to: "peer", kind: "type", why: "the engine drives the peer network it is handed" },
  { from: "sync", to: "peer", kind: "dynamic", why: "the runner loads the peer network when asked for" },
];

type ImportKind = "value" | "type" | "dynamic";

interface Edge {
  from: string;
  to: string;
  kind: ImportKind;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith(".ts") && !e.name.endsWith(".test.ts"))
    .map((e) => join(e.parentPath, e.name));
}

/** The relative imports of one file: static (value or `import type`/`export type`) and dynamic. */
function importsOf(file: string): Edge[] {
  const text = readFileSync(file, "utf8");
  const edges: Edge[] = [];
  const add = (specifier: string, kind: ImportKind): void => {
    if (!specifier.startsWith(".")) return;
    edges.push({ from: file, to: resolve(dirname(file), specifier), kind });
  };
  // A statement starts its line; `import { type A }` keeps a (side-effect) import under
  // verbatimModuleSyntax, so only `import type` / `export type` count as type-only.
  for (const m of text.matchAll(/^(?:import|export)\s+(type\s+)?[^;]*?\bfrom\s*["']([^"']+)["']/gm))
    add(m[2]!, m[1] ? "type" : "value");
  for (const m of text.matchAll(/^import\s*["']([^"']+)["']/gm)) add(m[1]!, "value");
  for (const m of text.matchAll(/\bimport\(\s*["']([^"']+)["']\s*\)/g)) add(m[1]!, "dynamic");
  return edges;
}

const edges = sourceFiles(src).flatMap(importsOf);

describe("client layering", () => {
  it("knows every folder's layer", () => {
    const unknown = [...new Set(edges.flatMap((e) => [concept(e.from), concept(e.to)]))].filter(
      (c) => !rank.has(c),
    );
    expect(unknown, "add new folders to LAYERS").toEqual([]);
  });

  it("imports point inward, except the listed outward edges", () => {
    const outward = edges
      .filter((e) => rank.get(concept(e.to))! > rank.get(concept(e.from))!)
      .map((e) => ({ from: concept(e.from), to: concept(e.to), kind: e.kind, file: relative(src, e.from) }))
      .filter((e) => !OUTWARD.some((o) => o.from === e.from && o.to === e.to && o.kind === e.kind));
    expect(outward).toEqual([]);
  });

  it("the scan sees the imports it is meant to judge", () => {
    // Guards the regular expressions: a scan that finds nothing would pass the tests above vacuously.
    const seen = (from: string, to: string, kind: ImportKind): boolean =>
      edges.some((e) => concept(e.from) === from && concept(e.to) === to && e.kind === kind);
    expect(seen("peer", "sync", "value")).toBe(true);
    expect(seen("status", "sync", "type")).toBe(true);
    expect(seen("replica", "protocol", "value")).toBe(true);
  });

  it("the core of a local database reaches none of sync, peer, bundles or tabs at run time", () => {
    // What `import ... from "@shoal/client"` loads: the static value imports reachable from index.ts.
    const byFile = new Map<string, Edge[]>();
    for (const e of edges) byFile.set(e.from, [...(byFile.get(e.from) ?? []), e]);
    const reached = new Set<string>();
    const visit = (file: string): void => {
      if (reached.has(file)) return;
      reached.add(file);
      for (const e of byFile.get(file) ?? []) if (e.kind === "value") visit(e.to);
    };
    visit(join(src, "index.ts"));
    expect(reached.has(join(src, "replica", "replica.ts")), "the walk follows imports").toBe(true);
    // sync/acks.ts reads the relay's receipts for `db.durability`: a Dexie read, no sync code.
    const optional = [...reached]
      .map((f) => relative(src, f).split("\\").join("/"))
      .filter((f) => /^(peer|bundles|tabs|snapshots|sync)\//.test(f) && f !== "sync/acks.ts");
    expect(optional).toEqual([]);
  });
});
