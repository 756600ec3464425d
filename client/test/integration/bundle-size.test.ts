import { spawnSync } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";

// Runs `npm run size` (scripts/bundle-size.mjs) as a user would and checks what each minimal app ships,
// by content rather than by size: the local-only app's JavaScript holds none of the sync engine, the
// tab election, WebRTC or bundle code; the relay app loads the sync code but not WebRTC or bundles.

const root = fileURLToPath(new URL("../../..", import.meta.url));
const script = fileURLToPath(new URL("../../../scripts/bundle-size.mjs", import.meta.url));

/**
 * Strings each optional part compiles to, which minification keeps (string literals, property names,
 * DOM method names) and nothing else in the client contains (the layering test keeps the modules apart).
 */
const MARKERS = {
  engine: "reconnectAll", // SyncEngine / SyncRunner
  tabs: "shoal-sync:", // the tab election's Web Lock name
  webrtc: "createDataChannel", // the peer network
  bundles: "not a Shoal bundle", // the bundle file reader
} as const;

interface Measured {
  workDir: string;
  apps: {
    name: string;
    files: { file: string; kind: "initial" | "loaded" | "lazy" | "wasm" | "asset"; raw: number }[];
  }[];
}

const run = spawnSync(process.execPath, [script, "--json", "--keep"], { cwd: root, encoding: "utf8" });
const measured: Measured | undefined = run.status === 0 ? (JSON.parse(run.stdout) as Measured) : undefined;

afterAll(() => {
  if (measured) rmSync(measured.workDir, { recursive: true, force: true });
});

/** The JavaScript of one app's chunks of the given kinds, concatenated. */
function code(app: string, kinds: readonly string[]): string {
  const files = measured!.apps.find((a) => a.name === app)!.files;
  return files
    .filter((f) => kinds.includes(f.kind))
    .map((f) => readFileSync(f.file, "utf8"))
    .join("\n");
}

describe("npm run size", () => {
  it("builds every minimal app", () => {
    expect(run.status, run.stderr).toBe(0);
    expect(measured!.apps.map((a) => a.name)).toEqual([
      "shoal-local",
      "shoal-relay",
      "dexie",
      "automerge-repo-local",
      "automerge-repo-websocket",
    ]);
    for (const app of measured!.apps)
      expect(app.files.some((f) => f.kind === "initial" && f.raw > 0)).toBe(true);
  });

  it("a local-only app loads no sync, tab election, WebRTC or bundle code", () => {
    const loaded = code("shoal-local", ["initial", "loaded"]);
    expect(loaded).toContain("openDatabase needs a name."); // the app's own code is there
    for (const marker of Object.values(MARKERS)) expect(loaded).not.toContain(marker);
    // The optional code is only emitted as on-demand chunks (the markers are real, not typos).
    const lazy = code("shoal-local", ["lazy"]);
    for (const marker of Object.values(MARKERS)) expect(lazy).toContain(marker);
  });

  it("a relay app loads the sync engine and tab election, and neither WebRTC nor bundles", () => {
    const atStart = code("shoal-relay", ["initial"]);
    for (const marker of Object.values(MARKERS)) expect(atStart).not.toContain(marker);
    const loaded = code("shoal-relay", ["initial", "loaded"]);
    expect(loaded).toContain(MARKERS.engine);
    expect(loaded).toContain(MARKERS.tabs);
    expect(loaded).not.toContain(MARKERS.webrtc);
    expect(loaded).not.toContain(MARKERS.bundles);
  });
});
