import { expect, type Browser, type BrowserContext, type Page, type TestInfo } from "@playwright/test";

/**
 * Chromium's console error for the access probe a browser sends after a failed WebSocket (the
 * transport asks the relay why the socket failed, PROTOCOL.md 1) when the relay is not listening.
 * Tested against the message followed by its location, ` (<url>)`.
 */
export const PROBE_CUT_NOISE =
  /Failed to load resource: net::ERR_CONNECTION_(REFUSED|RESET) \(http:\/\/127\.0\.0\.1:\d+\/sync\/[0-9a-f]+\/access\)$/;

/**
 * Messages a page logs that are not the app's: Chromium reports every refused WebSocket connection as
 * a console error, and the failed access probe that follows it as another (PROBE_CUT_NOISE); there is
 * no way for a page to silence either. Only specs that cut the relay on purpose pass this list;
 * everything else fails the test.
 */
export const RELAY_CUT_NOISE: readonly RegExp[] = [
  /WebSocket connection to 'ws:\/\/127\.0\.0\.1:\d+\/sync\/[0-9a-f]+' failed/,
  PROBE_CUT_NOISE,
  // The relay also serves the app: Chromium may ask for the page's icon after it stopped.
  /^Failed to load resource: net::ERR_CONNECTION_REFUSED \(http:\/\/127\.0\.0\.1:\d+\/icon\.svg\)$/,
];

/**
 * Whether a console error is what Chromium logs while the relay is stopped on purpose: a refused or
 * reset WebSocket (reset when the relay stops in the middle of a handshake), or the access probe after it.
 */
export function isRelayStoppedNoise(e: string): boolean {
  return (
    /WebSocket connection to .* failed: .*ERR_CONNECTION_(REFUSED|RESET)/.test(e) || PROBE_CUT_NOISE.test(e)
  );
}

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
      if (m.type() !== "error") return;
      // Chromium's own network messages name the resource only in their location, not their text.
      const url = m.location().url;
      const line = url ? `${m.text()} (${url})` : m.text();
      if (!this.#allowed.some((r) => r.test(line))) this.errors.push(`${this.name}: console.error: ${line}`);
    });
    // Uncaught exceptions and unhandled promise rejections both arrive here.
    page.on("pageerror", (e) => this.errors.push(`${this.name}: uncaught: ${e.stack ?? e.message}`));
    this.pages.push(page);
    return page;
  }

  /**
   * Accepts console errors matching these (see RELAY_CUT_NOISE) from now on. A pattern is tested
   * against the message followed by ` (<url>)` when Chromium gives the message a location.
   */
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
