import { serveStatic } from "@hono/node-server/serve-static";
import type { Hono } from "hono";
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";

/**
 * The Content-Security-Policy of the served app: its own scripts only, plus WebAssembly compilation
 * (Automerge is wasm: `'wasm-unsafe-eval'`, which allows no JavaScript eval); connections only to its
 * own origin (`'self'` covers `ws:`/`wss:` to the same host); `data:` images for the empty favicon;
 * no plugins, no `<base>` or form posts elsewhere, and no framing by any site.
 */
export const APP_CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self' 'wasm-unsafe-eval'",
  "style-src 'self'",
  "img-src 'self' data: blob:",
  "connect-src 'self'",
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
 * Serves a built web app from `dir` at `/`, with SPA fallback: a GET for a path without a file
 * extension that matches no file gets `index.html`, so client-side routes survive a reload. A missing
 * asset (`/assets/x.js`) stays a 404 rather than HTML that a browser would try to run. Content types
 * come from hono's table, which maps `.wasm` to `application/wasm` as `WebAssembly.instantiateStreaming`
 * requires. Every answer carries `APP_SECURITY_HEADERS`.
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
  });
  app.use("*", serveStatic({ root }));
  app.get("*", async (c, next) => {
    if (/\.[a-z0-9]+$/i.test(c.req.path) || c.req.path.startsWith("/sync/")) return next();
    return serveStatic({ path: index })(c, next);
  });
}
