import type { Page } from "@playwright/test";

/** Path of the harness page on the relay that serves the e2e site (see scripts/build.mjs). */
export const HARNESS_PATH = "/harness/index.html";

/** Opens the harness and waits until `window.__shoal` holds the loaded library. */
export async function openHarness(page: Page): Promise<void> {
  await page.goto(HARNESS_PATH);
  await page.waitForFunction(() => window.__shoalReady === true);
}

/** A database name no other test (or earlier run in a persistent profile) has used. */
export function uniqueDbName(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
}
