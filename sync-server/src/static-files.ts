import { serveStatic } from "@hono/node-server/serve-static";
import type { Hono } from "hono";
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";

/**
 * The Content-Security-Policy of the served app: its own scripts only, plus WebAssembly compilation
 * (Automerge is wasm: `'wasm-unsafe-eval'`, which allows no JavaScript eval); connections only to its
 * own origin (`'self'` covers `ws:`/`wss:` to the same host); `data:` images for the empty favicon;
 * a service worker and a web app manifest from the app's own origin (the demo is an offline app; both
 * would fall back to `default-src`, spelled out so that tightening the default cannot break them);
 * no plugins, no `<base>` or form posts elsewhere, and no framing by any site.
 */
export const APP_CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self' 'wasm-unsafe-eval'",
  "style-src 'self'",
  "img-src 'self' data: blob:",
  "connect-src 'self'",
  "worker-src 'self'",
  "manifest-src 'self'",
  "object-src 'none'",
  "base-uri 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join("; ");

/** Every header the served app's responses carry (see `APP_CONTENT_SECURITY_POLICY`). */
export const APP_SECURITY_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  "Content-Security-Policy": APP_CONTENT_SECURITY_POLICY,
  // An invitation link's fragment never leaves the page anyway; the path need not either.
  "Referrer-Policy": "no-referrer",
  "X-Content-Type-Options": "nosniff",
  // For browsers without frame-ancestors.
  "X-Frame-Options": "DENY",
});

/**
 * A file Vite named after its content (`/assets/index-C4Us3djn.js`): a new build gives it a new name, so
 * it may be cached for good. Other assets are only hashed when the app's bundler does so.
 */
const CONTENT_HASHED_ASSET = /^\/assets\/[^/]+-[A-Za-z0-9_-]{8}\.[a-z0-9]+$/i;

/**
 * How long a browser may reuse a static answer without asking again. Content-hashed assets: a year,
 * immutable. Everything else (index.html, the service worker script, the web app manifest, the SPA
 * fallback): `no-cache`, i.e. revalidate every time, so a new build is seen on the next load and a
 * service worker update is never held back by the HTTP cache.
 */
export function cacheControlFor(path: string): string {
  return CONTENT_HASHED_ASSET.test(path) ? "public, max-age=31536000, immutable" : "no-cache";
}

/**
 * Serves a built web app from `dir` at `/`, with SPA fallback: a GET for a path without a file
 * extension that matches no file gets `index.html`, so client-side routes survive a reload. A missing
 * asset (`/assets/x.js`) stays a 404 rather than HTML that a browser would try to run. Content types
 * come from hono's table, which maps `.wasm` to `application/wasm` as `WebAssembly.instantiateStreaming`
 * requires. Every answer carries `APP_SECURITY_HEADERS` and a Cache-Control header (`cacheControlFor`).
 *
 * @example
 * serveStaticApp(root, "./demo-app/dist");
 */
export function serveStaticApp(app: Hono, dir: string): void {
  const root = resolve(dir);
  const index = join(root, "index.html");
  if (!existsSync(index)) throw new Error(`--static ${dir}: no index.html there.`);
  app.use("*", async (c, next) => {
    await next();
    if (c.req.path.startsWith("/sync/")) return;
    for (const [name, value] of Object.entries(APP_SECURITY_HEADERS)) c.header(name, value);
    // Only on what was found: a 404 must not be kept for a year under an asset's name.
    if (c.res.ok) c.header("Cache-Control", cacheControlFor(c.req.path));
  });
  app.use("*", serveStatic({ root }));
  app.get("*", async (c, next) => {
    if (/\.[a-z0-9]+$/i.test(c.req.path) || c.req.path.startsWith("/sync/")) return next();
    return serveStatic({ path: index })(c, next);
  });
}
