// Issue 17, item 1, through a real relay process: two devices share a stock of doses (a bounded
// counter, min 0). Online, a device short of rights asks and the other grants through sync; offline,
// each tries to take more than half: the refusal is immediate and typed, and once they merge the stock
// is at its bound, never below it, on either device.
import { afterEach, describe, expect, it } from "vitest";
import { InsufficientRights, rightsOfRow, type Database, type Rights } from "../../src/index.ts";
import { waitFor } from "../wait-for.ts";
import {
  closeAllDevices,
  disposeAllRelays,
  openDevice,
  RelayHarness,
  relayAcknowledged,
} from "../relay-harness.ts";

type Site = { name: string; doses: number };
type Db = Database<{ sites: Site }>;
const collections = { sites: { indexes: "id, name", counters: { doses: { min: 0 } } } };
const device = (label: string) => openDevice<{ sites: Site }>(label, collections);

afterEach(async () => {
  await closeAllDevices();
  await disposeAllRelays();
});

/** Resolves once this device's view of the site's doses passes `ok` (a live query: an event). */
const rightsWhen = (db: Db, id: string, ok: (r: Rights) => boolean, what: string) =>
  waitFor(
    db.sites.live((c) => c.get(id)),
    (row) => row !== undefined && ok(rightsOfRow(row, "doses", db.deviceId)),
    30_000,
    what,
  );

/** A take's outcome: "ok", or the error it threw. */
const attempt = (db: Db, id: string, n: number) =>
  db.sites.take(id, "doses", n).then(
    () => "ok" as const,
    (e: unknown) => e,
  );

describe("bounded counter through the relay", () => {
  it("two offline devices each taking more than half never take the stock below its bound", async () => {
    const relay = await RelayHarness.start();
    const [a, b] = await Promise.all([device("stock-a"), device("stock-b")]);
    for (const x of [a, b]) x.online(relay.url);
    const space = await a.db.createSpace({ name: "Region" });
    const link = await a.db.invite(space, { role: "writer" });
    await relayAcknowledged(a.db, space.id);
    await b.db.join(link, { name: "Site B", relay: relay.url });
    const id = await a.db.sites.insert({ name: "North", doses: 10 }, { space });
    await rightsWhen(b.db, id, (r) => r.value === 10, "B to see the stock");
    // Every value either device shows, from here to the end: none may be below the bound.
    const seen: number[] = [];
    const subs = [a, b].map((x) =>
      x.db.sites.live((c) => c.get(id)).subscribe((row) => seen.push(row?.doses ?? 0)),
    );

    // Online: B holds nothing; its take fails at once with the typed error, and its request reaches A,
    // which grants it through sync.
    const refused = await attempt(b.db, id, 5);
    expect(refused).toBeInstanceOf(InsufficientRights);
    expect(refused).toMatchObject({ held: 0, total: 10, wanted: 5 });
    await rightsWhen(b.db, id, (r) => r.held === 5, "A's grant to reach B");
    await rightsWhen(a.db, id, (r) => r.held === 5 && r.value === 10, "A to hold the rest");

    // Offline: each tries to take more than half of the stock.
    a.offline();
    b.offline();
    for (const x of [a, b]) {
      const r = await attempt(x.db, id, 6);
      expect(r).toBeInstanceOf(InsufficientRights);
      expect(r).toMatchObject({ code: "InsufficientRights", held: 5, total: 10 });
      expect(await attempt(x.db, id, 5)).toBe("ok");
      expect(await attempt(x.db, id, 1)).toMatchObject({ held: 0 });
    }

    // Back online: both merge to the bound, and stay there.
    for (const x of [a, b]) x.online(relay.url);
    for (const x of [a, b]) await rightsWhen(x.db, id, (r) => r.value === 0 && r.total === 0, "the merge");
    expect(Math.min(...seen)).toBeGreaterThanOrEqual(0);

    // A restocks. B's last refusal offline (1 dose) is still asked for: A, no longer short itself,
    // grants it. B then asks for more while both are online, and the rights move to B.
    await a.db.sites.add(id, "doses", 4);
    await rightsWhen(b.db, id, (r) => r.value === 4 && r.held === 1, "B's pending request to be served");
    expect(await attempt(b.db, id, 3)).toMatchObject({ held: 1, total: 4 });
    await rightsWhen(b.db, id, (r) => r.held === 3, "the second grant");
    expect(await attempt(b.db, id, 3)).toBe("ok");
    for (const x of [a, b]) await rightsWhen(x.db, id, (r) => r.value === 1, "the last take");
    expect(Math.min(...seen)).toBeGreaterThanOrEqual(0);
    expect(await a.db.quarantine()).toEqual([]);
    expect(await b.db.quarantine()).toEqual([]);
    for (const s of subs) s.unsubscribe();
  });
});
