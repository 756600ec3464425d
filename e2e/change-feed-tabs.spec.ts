// The change feed in real Chromium: a feed followed in one tab is woken by commits another tab of the
// same device writes (Dexie's BroadcastChannel carries the write), and a cursor saved in one tab
// resumes in a tab opened later (a reload) with exactly the commits after it.
import { expect, test } from "@playwright/test";
import type { Change, Database } from "@shoal/client";
import { openHarness, uniqueDbName } from "./support/harness.ts";
import { collectPageErrors } from "./support/page-errors.ts";

type Db = Database<{ patients: { name: string } }>;
const collections = { patients: "id, name" };

test("a change feed in one tab gets another tab's commits, and resumes from its cursor after a reload", async ({
  context,
}) => {
  const tabA = await context.newPage();
  const tabB = await context.newPage();
  const errors = [tabA, tabB].map(collectPageErrors);
  await Promise.all([openHarness(tabA), openHarness(tabB)]);
  const dbName = uniqueDbName("feed-tabs");

  // Tab A follows the feed from the beginning (nothing there yet) and records what it gets.
  await tabA.evaluate(
    async ({ dbName, collections }) => {
      const db = (await window.__shoal.client.openDatabase({
        name: dbName,
        collections,
        persist: false,
      })) as unknown as Db;
      const seen: Change[] = [];
      window.__e2e = { db, seen };
      db.changes().subscribe((c) => seen.push(c));
    },
    { dbName, collections },
  );
  const seenInA = () =>
    tabA.evaluate(() => (window.__e2e!.seen as Change[]).map((c) => c.records[0]?.id ?? ""));

  // Tab B writes three records.
  const ids = await tabB.evaluate(
    async ({ dbName, collections }) => {
      const db = (await window.__shoal.client.openDatabase({
        name: dbName,
        collections,
        persist: false,
      })) as unknown as Db;
      window.__e2e = { db };
      const out: string[] = [];
      for (const name of ["Ada", "Bea", "Cy"]) out.push(await db.patients.insert({ name }));
      return out;
    },
    { dbName, collections },
  );
  await expect.poll(seenInA).toEqual(ids);

  // A cursor after the first commit, then a reload of tab B and two more commits: resuming there
  // gives exactly the four after it.
  const cursor = await tabA.evaluate(() => (window.__e2e!.seen as Change[])[0]!.cursor);
  await tabB.reload();
  await openHarness(tabB);
  const resumed = await tabB.evaluate(
    async ({ dbName, collections, cursor }) => {
      const db = (await window.__shoal.client.openDatabase({
        name: dbName,
        collections,
        persist: false,
      })) as unknown as Db;
      await db.patients.insert({ name: "Dee" });
      await db.patients.insert({ name: "Eve" });
      const got: string[] = [];
      const stop = new AbortController();
      for await (const c of db.changes({ since: cursor, signal: stop.signal })) {
        got.push(c.commit);
        if (got.length === 4) stop.abort();
      }
      const all = (await db.exportCommits({})).map((c) => c.id as string);
      await db.close();
      return { got, all };
    },
    { dbName, collections, cursor },
  );
  expect(resumed.got).toEqual(resumed.all.slice(1));
  await expect.poll(() => seenInA().then((s) => s.length)).toBe(5);
  expect(errors.flat()).toEqual([]);
});
