// Two pages of one browser context are two tabs of one device: they share IndexedDB, and a write in one
// must reach a live query in the other (DESIGN.md, "Live queries").
import { expect, test } from "@playwright/test";
import { openHarness, uniqueDbName } from "./support/harness.ts";
import { collectPageErrors } from "./support/page-errors.ts";

const collections = { patients: { indexes: "id, name, ward, *tags", text: ["notes"] } };

test("a live query in one tab updates after a write in another tab", async ({ context }) => {
  const tabA = await context.newPage();
  const tabB = await context.newPage();
  const errors = [tabA, tabB].map(collectPageErrors);
  await Promise.all([openHarness(tabA), openHarness(tabB)]);
  const dbName = uniqueDbName("cross-tab");

  // Tab A: subscribe and record every emission's names on window for the test to poll.
  await tabA.evaluate(
    async ({ dbName, collections }) => {
      const db = await window.__shoal.client.openDatabase({ name: dbName, collections });
      const emissions: string[][] = [];
      window.__e2e = { emissions };
      db.patients
        .live((c) => c.where("name").startsWith("A"))
        .subscribe((rows) => emissions.push(rows.map((row) => String(row.name))));
    },
    { dbName, collections },
  );
  const latestInA = () =>
    tabA.evaluate(() => (window.__e2e?.emissions as string[][] | undefined)?.at(-1) ?? null);
  // The first emission (the empty result) proves the subscription is live before tab B writes.
  await expect.poll(latestInA).toEqual([]);

  await tabB.evaluate(
    async ({ dbName, collections }) => {
      const db = await window.__shoal.client.openDatabase({ name: dbName, collections });
      await db.patients.insert({ name: "Ada", ward: "A", tags: [], notes: "" });
      await db.patients.insert({ name: "Zoe", ward: "A", tags: [], notes: "" });
    },
    { dbName, collections },
  );

  await expect.poll(latestInA).toEqual(["Ada"]);
  expect(errors.flat()).toEqual([]);
});
