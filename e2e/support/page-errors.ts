import type { Page } from "@playwright/test";

/**
 * Collects everything a page reports as an error (console.error and uncaught exceptions) from now on.
 * Specs assert the list is empty at the end, so a warning-free page is part of what they test. A
 * console error reads `console.error: <text> (<url>)` when Chromium gives it a location.
 */
export function collectPageErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on("console", (message) => {
    if (message.type() !== "error") return;
    // Chromium's own network messages name the resource only in their location, not their text.
    const url = message.location().url;
    errors.push(`console.error: ${message.text()}${url ? ` (${url})` : ""}`);
  });
  page.on("pageerror", (error) => errors.push(`uncaught: ${error.stack ?? error.message}`));
  return errors;
}
