import { expect, type Browser, type BrowserContext, type Page, type TestInfo } from "@playwright/test";

/**
 * Messages a page logs that are not the app's: Chromium reports every refused WebSocket connection as
 * a console error, and there is no way for a page to silence it. Only specs that cut the relay on
 * purpose pass this list; everything else fails the test.
 */
export const RELAY_CUT_NOISE: readonly RegExp[] = [
  /WebSocket connection to 'ws:\/\/127\.0\.0\.1:\d+\/sync\/[0-9a-f]+' failed/,
];

/** One device: a browser context (its own IndexedDB and localStorage) with one or more tabs. */
export class DemoDevice {
  readonly errors: string[] = [];
  readonly pages: Page[] = [];
  #allowed: readonly RegExp[] = [];

  private constructor(
    readonly name: string,
    readonly context: BrowserContext,
  ) {}

  /** A new device (a fresh browser context). */
  static async open(browser: Browser, name: string): Promise<DemoDevice> {
    const device = new DemoDevice(name, await browser.newContext({ viewport: { width: 1180, height: 820 } }));
    await device.newTab();
    return device;
  }

  /** The first tab. */
  get page(): Page {
    return this.pages[0]!;
  }

  /** Another tab of this device: same IndexedDB, same localStorage. */
  async newTab(): Promise<Page> {
    const page = await this.context.newPage();
    page.on("console", (m) => {
      if (m.type() === "error" && !this.#allowed.some((r) => r.test(m.text())))
        this.errors.push(`${this.name}: console.error: ${m.text()}`);
    });
    // Uncaught exceptions and unhandled promise rejections both arrive here.
    page.on("pageerror", (e) => this.errors.push(`${this.name}: uncaught: ${e.stack ?? e.message}`));
    this.pages.push(page);
    return page;
  }

  /** Accepts console errors matching these (see RELAY_CUT_NOISE) from now on. */
  allowConsoleErrors(patterns: readonly RegExp[]): void {
    this.#allowed = patterns;
  }

  /** Saves a screenshot of a tab as a test artifact (in the output directory and the report). */
  async screenshot(testInfo: TestInfo, label: string, page: Page = this.page): Promise<void> {
    const path = testInfo.outputPath(`${label}.png`);
    // The viewport, not the full page: the sticky status bar then sits where people see it.
    await page.screenshot({ path });
    await testInfo.attach(label, { path, contentType: "image/png" });
  }

  async close(): Promise<void> {
    await this.context.close();
  }
}

/** Fails the test if any device's pages reported an error. */
export function expectNoPageErrors(...devices: DemoDevice[]): void {
  expect(devices.flatMap((d) => d.errors)).toEqual([]);
}
