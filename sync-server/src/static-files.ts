import { serveStatic } from "@hono/node-server/serve-static";
import type { Hono } from "hono";
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";

/**
 * Serves a built web app from `dir` at `/`, with SPA fallback: a GET for a path without a file
 * extension that matches no file gets `index.html`, so client-side routes survive a reload. A missing
 * asset (`/assets/x.js`) stays a 404 rather than HTML that a browser would try to run. Content types
 * come from hono's table, which maps `.wasm` to `application/wasm` as `WebAssembly.instantiateStreaming`
 * requires.
 *
 * @example
 * serveStaticApp(root, "./demo-app/dist");
 */
export function serveStaticApp(app: Hono, dir: string): void {
  const root = resolve(dir);
  const index = join(root, "index.html");
  if (!existsSync(index)) throw new Error(`--static ${dir}: no index.html there.`);
  app.use("*", serveStatic({ root }));
  app.get("*", async (c, next) => {
    if (/\.[a-z0-9]+$/i.test(c.req.path) || c.req.path.startsWith("/sync/")) return next();
    return serveStatic({ path: index })(c, next);
  });
}
