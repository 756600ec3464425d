// The bench page: Shoal, the peer (automerge-repo) and the raw limits, built by Vite exactly as an app
// would build them, exposed on window for scripts/bench.mjs to call through `page.evaluate`.
// First import: it replaces the global WebSocket before any library module captures it.
import "./counting-socket.ts";
import * as peer from "./peer-bench.ts";
import * as raw from "./raw-bench.ts";
import * as shoal from "./shoal-bench.ts";

/** Every step function of the page, by name. */
export const steps = { ...shoal, ...peer, ...raw };

declare global {
  interface Window {
    __bench: typeof steps;
    __benchReady?: boolean;
  }
}

window.__bench = steps;
window.__benchReady = true;
