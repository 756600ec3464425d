// `db.transact(fn, { durable: "relay" })` in real Chromium against a real relay process: it resolves
// only once the relay acknowledged the commit. With the relay stopped the commit is saved locally at
// once and the promise stays pending through reconnect attempts that fail (what proves it is waiting
// is the client's own report: the commit is local, durability().relay is false, and the sync status
// went through failed reconnects after the commit was saved, with the promise still unsettled; no
// sleep). Started again on the same port and data directory, the relay takes the upload and the
// promise resolves with the transaction's result.
import { expect, test, type Page } from "@playwright/test";
import type { CommitId, Database, SpaceId } from "@shoal/client";
import { isRelayStoppedNoise } from "./support/demo-device.ts";
import { HARNESS_PATH, uniqueDbName } from "./support/harness.ts";
import { collectPageErrors } from "./support/page-errors.ts";
import { RelayProcess } from "./support/relay-process.ts";

type Db = Database<{ notes: { title: string } }>;

interface Probe {
  db: Db;
  space: SpaceId;
  /** The durable transaction's outcome, once settled. */
  outcome?: { ok: true; value: string } | { ok: false; code: string };
  /** Times the relay connection went to `connecting` since `watch` began. */
  attempts: number;
}

const probe = (page: Page) => page.evaluate(() => window.__e2e!.probe as Probe);

test('durable: "relay" waits while the relay is stopped and resolves once it is back', async ({ page }) => {
  test.setTimeout(120_000);
  const relay = new RelayProcess();
  await relay.start();
  const errors = collectPageErrors(page);
  try {
    await page.goto(new URL(HARNESS_PATH, relay.url).href);
    await page.waitForFunction(() => window.__shoalReady === true);
    await page.evaluate(async (name) => {
      const db = (await window.__shoal.client.openDatabase({
        name,
        collections: { notes: "id, title" },
        persist: false,
      })) as unknown as Db;
      const space = (await db.createSpace({ name: "Durable" })).id;
      const p: Probe = { db, space, attempts: 0 };
      window.__e2e = { probe: p };
      // Short backoff: the relay comes back within seconds.
      db.sync({ relay: location.origin, backoff: { baseMs: 100, maxMs: 500 } });
    }, uniqueDbName("durable"));

    // Relay up: the durable write resolves, and by then the relay holds it.
    const first = await page.evaluate(async () => {
      const { db, space } = window.__e2e!.probe as Probe;
      await db.transact((tx) => tx.notes.insert({ title: "first" }, { space }), { durable: "relay" });
      return db.durability(`${space}.${db.deviceId}.1` as CommitId);
    });
    expect(first).toEqual({ local: true, relay: true, devices: [] });

    // Relay stopped for real.
    await relay.stop();
    await page.waitForFunction(() => {
      const { db } = window.__e2e!.probe as Probe;
      const t = db.status.get().transports.filter((x) => x.kind === "relay");
      return t.length > 0 && t.every((x) => x.state !== "connected");
    });

    // The durable write: saved locally, then waiting. Connection attempts are counted from here.
    await page.evaluate(() => {
      const p = window.__e2e!.probe as Probe;
      let last = p.db.status.get().state;
      p.db.status.subscribe((s) => {
        if (s.state === "connecting" && last !== "connecting") p.attempts++;
        last = s.state;
      });
      p.db
        .transact((tx) => tx.notes.insert({ title: "second" }, { space: p.space }), { durable: "relay" })
        .then(
          (value) => (p.outcome = { ok: true, value }),
          (e: { code?: string }) => (p.outcome = { ok: false, code: String(e?.code) }),
        );
    });
    const second = await page.evaluate(() => {
      const { db, space } = window.__e2e!.probe as Probe;
      return `${space}.${db.deviceId}.2`;
    });
    // Saved on this device and counted as pending...
    await page.waitForFunction(async (id) => {
      const { db } = window.__e2e!.probe as Probe;
      return (await db.durability(id as CommitId)).local && db.status.get().pendingCommits === 1;
    }, second);
    // ...and the client has since tried the relay again, twice, and failed (it is back to offline).
    await page.waitForFunction(() => {
      const p = window.__e2e!.probe as Probe;
      return p.attempts >= 2 && p.db.status.get().state === "offline";
    });
    const pending = await page.evaluate(async (id) => {
      const { db } = window.__e2e!.probe as Probe;
      return {
        durability: await db.durability(id as CommitId),
        outcome: (window.__e2e!.probe as Probe).outcome,
      };
    }, second);
    expect(pending.durability).toEqual({ local: true, relay: false, devices: [] });
    expect(pending.outcome).toBeUndefined();

    // Relay back on the same port and data directory: the upload is acknowledged, the promise resolves.
    await relay.start();
    await page.waitForFunction(() => (window.__e2e!.probe as Probe).outcome !== undefined, undefined, {
      timeout: 60_000,
    });
    const done = await page.evaluate(async (id) => {
      const p = window.__e2e!.probe as Probe;
      return {
        outcome: p.outcome,
        durability: await p.db.durability(id as CommitId),
        title: p.outcome?.ok ? (await p.db.notes.get(p.outcome.value))?.title : undefined,
      };
    }, second);
    expect(done.outcome?.ok).toBe(true);
    expect(done.title).toBe("second");
    expect(done.durability).toEqual({ local: true, relay: true, devices: [] });
    await page.evaluate(() => (window.__e2e!.probe as Probe).db.close());
    expect(errors.filter((e) => !isRelayStoppedNoise(e))).toEqual([]);
  } finally {
    await relay.dispose();
  }
});
