// The storage contract from @shoal/client, run in real Chromium against real IndexedDB: fake-indexeddb
// in the unit ring is not a browser. The module is imported here only for the case names; each case
// runs inside the harness page.
import { expect, test } from "@playwright/test";
import { storageContractCases } from "../client/src/testing/storage-contract.ts";
import { openHarness, uniqueDbName } from "./support/harness.ts";
import { collectPageErrors } from "./support/page-errors.ts";

test.describe("storage contract in Chromium", () => {
  for (const { name } of storageContractCases) {
    test(name, async ({ page }) => {
      const errors = collectPageErrors(page);
      await openHarness(page);
      await page.evaluate(
        async ({ name, dbName }) => {
          const { client, testing } = window.__shoal;
          const contractCase = testing.storageContractCases.find((c) => c.name === name);
          if (!contractCase) throw new Error(`the harness build has no storage contract case "${name}"`);
          await contractCase.run({ openDatabase: client.openDatabase, dbName });
        },
        { name, dbName: uniqueDbName("contract") },
      );
      expect(errors).toEqual([]);
    });
  }
});
