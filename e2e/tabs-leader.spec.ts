// One relay connection per browser (issue 8, item 1): three tabs of one device sync one database; the
// tabs elect a leader (Web Locks) that alone holds the relay connections. The leader tab is closed in
// the middle of the writing; another tab takes over, everything reaches the relay exactly once, and a
// fresh device that joins the space receives every record.
import type { Page } from "@playwright/test";
import type { Database, Space, SyncStatus } from "@shoal/client";
import { expect, test } from "./support/demo-test.ts";
import { HARNESS_PATH, uniqueDbName } from "./support/harness.ts";
import { collectPageErrors } from "./support/page-errors.ts";

const TABS = 3;
const PER_TAB = 30;
/** Commits each tab writes before the leader tab closes, then each follower's pause point. */
const FIRST = 10;
const PAUSE_AT = 20;
const collections = { patients: "id, name, tab" };

type Schema = { patients: { name: string; tab: number } };
type Db = Database<Schema>;

/** What each harness tab keeps on `window.__e2e` for the test to drive. */
interface TabState {
  db: Db;
  space: Space["id"];
  /** Inserts records `from` to `to` - 1 of this tab, one commit each, in order. */
  write(from: number, to: number): Promise<void>;
  /** Resolves the follower's pause (see `PAUSE_AT`). */
  resume(): void;
  paused: Promise<void>;
}

/** A Prometheus text exposition as name (with labels) to value. */
async function readMetrics(origin: string): Promise<Map<string, number>> {
  const text = await (await fetch(`${origin}/metrics`)).text();
  const samples = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const at = line.lastIndexOf(" ");
    samples.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return samples;
}

const statusOf = (page: Page): Promise<SyncStatus> =>
  page.evaluate(() => (window.__e2e as unknown as TabState).db.status.get());

/** The role of each tab, once every tab has one and the leader is synced. */
async function rolesWhenSynced(pages: readonly Page[]): Promise<string[]> {
  const statuses = await Promise.all(pages.map(statusOf));
  return statuses.map((s) => `${s.role}:${s.state}`);
}

test("three tabs share one relay connection per space; closing the leader loses and repeats nothing", async ({
  browser,
  relay,
}) => {
  test.setTimeout(120_000);
  const origin = relay.url;
  const dbName = uniqueDbName("tabs-leader");
  const device = await browser.newContext();
  const tabs: Page[] = [];
  const errors: string[][] = [];
  // Every sync connection goes through Playwright, which forwards the page's frames to the relay
  // unless the tab is "stalled": then its uploads never arrive, so the leader tab is provably closed
  // with commits the relay does not have yet (mid-sync), whatever the machine's speed.
  const stalled = new Set<Page>();
  for (let i = 0; i < TABS; i++) {
    const page = await device.newPage();
    errors.push(collectPageErrors(page));
    await page.routeWebSocket(
      (url) => url.pathname.startsWith("/sync/"),
      (ws) => {
        const server = ws.connectToServer();
        ws.onMessage((message) => {
          if (!stalled.has(page)) server.send(message);
        });
      },
    );
    await page.goto(`${origin}${HARNESS_PATH}`);
    await page.waitForFunction(() => window.__shoalReady === true);
    tabs.push(page);
  }

  // The shared space is made once, before anyone syncs; every tab of the device then holds it.
  const space = await tabs[0]!.evaluate(
    async ({ dbName, collections }) => {
      const db = await window.__shoal.client.openDatabase({ name: dbName, collections, persist: false });
      const made = await db.createSpace({ name: "Ward" });
      await db.close();
      return made.id;
    },
    { dbName, collections },
  );

  for (const [tab, page] of tabs.entries()) {
    await page.evaluate(
      async ({ dbName, collections, space, tab }) => {
        const db = await window.__shoal.client.openDatabase<Schema>({
          name: dbName,
          collections,
          persist: false,
        });
        let resume!: () => void;
        const paused = new Promise<void>((resolve) => (resume = resolve));
        const state: TabState = {
          db,
          space,
          resume,
          paused,
          write: async (from, to) => {
            for (let i = from; i < to; i++)
              await db.patients.insert({ name: `tab${tab}-${String(i).padStart(2, "0")}`, tab }, { space });
          },
        };
        window.__e2e = state as unknown as Record<string, unknown>;
        db.sync({ relay: `ws://${location.host}` });
      },
      { dbName, collections, space, tab },
    );
  }

  // One leader, two followers mirroring its status.
  await expect
    .poll(async () => (await rolesWhenSynced(tabs)).sort())
    .toEqual(["follower:synced", "follower:synced", "leader:synced"]);
  // One connection per space (the device's private space and the shared one), and no tab but the leader
  // ever connected.
  const before = await readMetrics(origin);
  expect(before.get("shoal_spaces_active")).toBe(2);
  expect(before.get("shoal_connections_open")).toBe(2);
  expect(before.get("shoal_connections_total")).toBe(2);

  const roles = await Promise.all(tabs.map(statusOf));
  const leader = tabs[roles.findIndex((s) => s.role === "leader")]!;
  const followers = tabs.filter((p) => p !== leader);

  // Every tab writes its first commits.
  await Promise.all(
    tabs.map((p) => p.evaluate((first) => (window.__e2e as unknown as TabState).write(0, first), FIRST)),
  );
  // The followers go on writing and pause halfway (waiting for `resume`), so they are still in the
  // middle of their writing when the leader tab goes; not awaited here.
  const followersDone = followers.map((p) =>
    p.evaluate(
      async ({ first, pauseAt, perTab }) => {
        const state = window.__e2e as unknown as TabState;
        await state.write(first, pauseAt);
        await state.paused;
        await state.write(pauseAt, perTab);
      },
      { first: FIRST, pauseAt: PAUSE_AT, perTab: PER_TAB },
    ),
  );
  // The leader writes the rest of its commits, none of which reaches the relay, and is closed.
  stalled.add(leader);
  await leader.evaluate(({ first, perTab }) => (window.__e2e as unknown as TabState).write(first, perTab), {
    first: FIRST,
    perTab: PER_TAB,
  });
  await leader.close();
  // At most the first commits of each tab reached the relay: the leader's last ones and the followers'
  // later ones are only in IndexedDB, for the next leader to upload.
  expect((await readMetrics(origin)).get("shoal_store_commits")).toBeLessThanOrEqual(TABS * FIRST);

  // One of the remaining tabs takes over.
  await expect
    .poll(async () => (await rolesWhenSynced(followers)).map((r) => r.split(":")[0]).sort())
    .toEqual(["follower", "leader"]);
  for (const p of followers) await p.evaluate(() => (window.__e2e as unknown as TabState).resume());
  await Promise.all(followersDone);

  // Everything acknowledged by the relay, as both remaining tabs see it.
  await expect
    .poll(async () =>
      (await Promise.all(followers.map(statusOf))).map((s) => `${s.state}/${s.pendingCommits}`),
    )
    .toEqual(["synced/0", "synced/0"]);

  const made = TABS * PER_TAB;
  const after = await readMetrics(origin);
  expect(after.get("shoal_spaces_active")).toBe(2);
  expect(after.get("shoal_connections_open")).toBe(2);
  // Each commit stored once, and none of it sent again (the new leader resumed from the relay's vector).
  expect(after.get("shoal_store_commits")).toBe(made);
  expect(after.get("shoal_commits_in_total")).toBe(made);
  expect(after.get("shoal_commits_duplicate_total")).toBe(0);

  // A fresh device joins the space and receives every record.
  const link = await followers[0]!.evaluate(async () => {
    const state = window.__e2e as unknown as TabState;
    return state.db.invite(state.space);
  });
  const other = await browser.newContext();
  const fresh = await other.newPage();
  errors.push(collectPageErrors(fresh));
  await fresh.goto(`${origin}${HARNESS_PATH}`);
  await fresh.waitForFunction(() => window.__shoalReady === true);
  await fresh.evaluate(
    async ({ dbName, collections, link }) => {
      const db = await window.__shoal.client.openDatabase({ name: dbName, collections, persist: false });
      await db.join(link);
      db.sync({ relay: `ws://${location.host}` });
      window.__e2e = { db } as unknown as Record<string, unknown>;
    },
    { dbName, collections, link },
  );
  await expect
    .poll(() => fresh.evaluate(() => (window.__e2e as unknown as TabState).db.patients.count()), {
      timeout: 30_000,
    })
    .toBe(made);
  const names = await fresh.evaluate(async () =>
    (await (window.__e2e as unknown as TabState).db.patients.toArray()).map((r) => String(r.name)).sort(),
  );
  const expected = Array.from({ length: TABS }, (_, tab) =>
    Array.from({ length: PER_TAB }, (_, i) => `tab${tab}-${String(i).padStart(2, "0")}`),
  )
    .flat()
    .sort();
  expect(names).toEqual(expected);
  // The fresh device only downloaded: the relay still holds each commit once.
  expect((await readMetrics(origin)).get("shoal_store_commits")).toBe(made);

  expect(errors.flat()).toEqual([]);
  await other.close();
  await device.close();
});
