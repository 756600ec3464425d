// The page Playwright specs drive: the real library, built by Vite exactly as an app would build it,
// exposed on window so that `page.evaluate` can call it in real Chromium with real IndexedDB.
import * as client from "@shoal/client";
import * as testing from "@shoal/client/testing";

window.__shoal = { client, testing };
window.__shoalReady = true;
