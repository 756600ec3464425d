import { test as base } from "@playwright/test";
import { RelayProcess } from "./relay-process.ts";

/**
 * The demo specs' `test`: each test gets a relay process of its own (fresh sqlite store), so one spec
 * can stop and restart it without touching the shared webServer or other tests.
 */
export const test = base.extend<{ relay: RelayProcess }>({
  // eslint-disable-next-line no-empty-pattern
  relay: async ({}, use) => {
    const relay = new RelayProcess();
    await relay.start();
    await use(relay);
    await relay.dispose();
  },
});

export { expect } from "@playwright/test";
