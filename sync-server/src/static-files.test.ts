import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Hono } from "hono";
import { afterAll, describe, expect, it } from "vitest";
import { APP_CONTENT_SECURITY_POLICY, serveStaticApp } from "./static-files.ts";

const dir = mkdtempSync(join(tmpdir(), "shoal-static-"));
mkdirSync(join(dir, "assets"));
writeFileSync(join(dir, "index.html"), "<!doctype html><title>app</title>");
writeFileSync(join(dir, "assets", "automerge.wasm"), new Uint8Array([0, 97, 115, 109]));
writeFileSync(join(dir, "assets", "automerge_wasm_bg-LjMxZKTS.wasm"), new Uint8Array([0, 97, 115, 109]));
writeFileSync(join(dir, "sw.js"), "self.addEventListener('fetch', () => {});");
writeFileSync(join(dir, "manifest.webmanifest"), '{"name":"app"}');
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

  it("serves the service worker as JavaScript and the manifest as a web app manifest, both allowed by the CSP", async () => {
    const sw = await app.request("/sw.js");
    expect(sw.headers.get("content-type")).toMatch(/^text\/javascript/);
    const manifest = await app.request("/manifest.webmanifest");
    expect(manifest.headers.get("content-type")).toBe("application/manifest+json");
    expect(APP_CONTENT_SECURITY_POLICY).toContain("worker-src 'self'");
    expect(APP_CONTENT_SECURITY_POLICY).toContain("manifest-src 'self'");
    expect(sw.headers.get("content-security-policy")).toBe(APP_CONTENT_SECURITY_POLICY);
  });

  it("lets browsers keep content-hashed assets for good and revalidate everything else", async () => {
    const cacheControl = async (path: string) => (await app.request(path)).headers.get("cache-control");
    expect(await cacheControl("/assets/automerge_wasm_bg-LjMxZKTS.wasm")).toBe(
      "public, max-age=31536000, immutable",
    );
    // A new build keeps these names, so the browser must ask each time or never see an update.
    for (const path of ["/", "/index.html", "/sw.js", "/manifest.webmanifest", "/patients/42"]) {
      expect(await cacheControl(path), path).toBe("no-cache");
    }
    expect(await cacheControl("/assets/automerge.wasm")).toBe("no-cache");
    expect(await cacheControl("/assets/missing-AAAAAAAA.js")).toBeNull();
  });
});
