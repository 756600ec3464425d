import type { Page } from "@playwright/test";

/**
 * Collects everything a page reports as an error (console.error and uncaught exceptions) from now on.
 * Specs assert the list is empty at the end, so a warning-free page is part of what they test.
 */
export function collectPageErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on("console", (message) => {
    if (message.type() === "error") errors.push(`console.error: ${message.text()}`);
  });
  page.on("pageerror", (error) => errors.push(`uncaught: ${error.stack ?? error.message}`));
  return errors;
}
