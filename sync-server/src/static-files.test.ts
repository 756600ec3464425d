import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Hono } from "hono";
import { afterAll, describe, expect, it } from "vitest";
import { serveStaticApp } from "./static-files.ts";

const dir = mkdtempSync(join(tmpdir(), "shoal-static-"));
mkdirSync(join(dir, "assets"));
writeFileSync(join(dir, "index.html"), "<!doctype html><title>app</title>");
writeFileSync(join(dir, "assets", "automerge.wasm"), new Uint8Array([0, 97, 115, 109]));
afterAll(() => rmSync(dir, { recursive: true }));

describe("serveStaticApp", () => {
  const app = new Hono();
  app.get("/healthz", (c) => c.text("ok"));
  serveStaticApp(app, dir);

  it("serves files, wasm as application/wasm, and falls back to index.html for app routes", async () => {
    expect(await (await app.request("/")).text()).toContain("<title>app</title>");
    const wasm = await app.request("/assets/automerge.wasm");
    expect(wasm.headers.get("content-type")).toBe("application/wasm");
    expect(await (await app.request("/patients/42")).text()).toContain("<title>app</title>");
    expect((await app.request("/assets/missing.js")).status).toBe(404);
    expect(await (await app.request("/healthz")).text()).toBe("ok");
  });
});
