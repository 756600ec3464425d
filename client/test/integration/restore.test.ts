import { afterEach, describe, expect, it } from "vitest";
import { asCounter, NotPermitted, openDatabase, type Database } from "../../src/index.ts";
import { memoryTransport } from "../../src/transports/memory-transport.ts";
import { inProcessRelay } from "../../../sync-server/src/testing/in-process-relay.ts";
import { waitFor } from "../wait-for.ts";
import {
  closeAllDevices,
  disposeAllRelays,
  openDevice,
  RelayHarness,
  relayAcknowledged,
} from "../relay-harness.ts";

type P = { name: string; ward: string; notes: string; visits: number; tags?: string[]; memo?: string };
const collections = {
  patients: { indexes: "id, name, ward", text: ["notes"], counters: ["visits"] },
} as const;
let n = 0;
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  await closeAllDevices();
  await disposeAllRelays();
});

async function open(clock?: () => number) {
  const db = await openDatabase<{ patients: P }>({
    name: `restore-${Date.now()}-${n++}`,
    collections: collections as never,
    ...(clock && { clock }),
  });
  cleanups.push(() => db.close());
  return db;
}

describe("restore a record", () => {
  it("brings back a past version after several edits as a new commit, text and counter included", async () => {
    const db = await open();
    const id = await db.patients.insert({ name: "Ada", ward: "A", notes: "First note.", visits: 1 });
    await db.patients.update(id, (p) => {
      p.notes = "First note. Second line.";
      asCounter(p.visits).increment(4);
      p.tags = ["x"];
    });
    await db.patients.update(id, (p) => {
      p.name = "Ada L.";
      p.ward = "B";
      p.notes = "Rewritten entirely.";
    });
    const before = await db.patients.history(id);
    expect(before).toHaveLength(3);
    expect(await db.patients.restore(id, before[0]!.commit)).toBe(true);
    expect(await db.patients.get(id)).toEqual({
      id,
      name: "Ada",
      ward: "A",
      notes: "First note.",
      visits: 1,
    });
    const after = await db.patients.history(id);
    expect(after).toHaveLength(4); // history kept: a fourth entry, nothing rewritten
    expect(after.slice(0, 3)).toEqual(before);
    expect(after[3]).toMatchObject({ op: "update", device: db.deviceId, restoredFrom: before[0]!.commit });
    // The second version, by the same means; and readAt of every old commit is unchanged.
    await db.patients.restore(id, before[1]!.commit);
    expect(await db.patients.get(id)).toMatchObject({
      notes: "First note. Second line.",
      visits: 5,
      tags: ["x"],
    });
    expect(await db.patients.readAt(id, before[2]!.commit)).toMatchObject({ name: "Ada L." });
    // Restoring to the version it holds writes nothing.
    expect(await db.patients.restore(id, before[1]!.commit)).toBe(false);
    // The counter stays a counter: increments after a restore still add.
    await db.patients.update(id, (p) => asCounter(p.visits).increment());
    expect((await db.patients.get(id))!.visits).toBe(6);
  });

  it("recreates a deleted record under its id, and restoring to its delete deletes it again", async () => {
    const db = await open();
    const id = await db.patients.insert({ name: "Bea", ward: "A", notes: "n", visits: 0 });
    await db.patients.update(id, (p) => void (p.notes = "n2"));
    await db.patients.delete(id);
    expect(await db.patients.get(id)).toBeUndefined();
    const h = await db.patients.history(id);
    await db.patients.restore(id, h[1]!.commit);
    expect(await db.patients.get(id)).toEqual({ id, name: "Bea", ward: "A", notes: "n2", visits: 0 });
    await db.patients.update(id, (p) => void (p.notes = "n3"));
    await db.patients.restore(id, h[2]!.commit);
    expect(await db.patients.get(id)).toBeUndefined();
    await expect(db.patients.restore(id, "nope" as never)).rejects.toThrow(/did not change/);
  });
});

describe("restore a space", () => {
  it("to a time: edited records go back, records inserted after are deleted, untouched ones stay", async () => {
    let now = Date.parse("2026-12-01T09:00:00Z");
    const db = await open(() => now);
    const space = await db.createSpace({ name: "Clinic" });
    const kept = await db.patients.insert({ name: "Kept", ward: "A", notes: "k", visits: 0 }, { space });
    const edited = await db.patients.insert({ name: "Edited", ward: "A", notes: "e1", visits: 2 }, { space });
    const removed = await db.patients.insert(
      { name: "Removed", ward: "A", notes: "r", visits: 0 },
      { space },
    );
    now += 60_000;
    const point = now;
    now += 60_000;
    await db.patients.update(edited, (p) => {
      p.notes = "e2";
      asCounter(p.visits).increment(3);
    });
    await db.patients.delete(removed);
    const late = await db.patients.insert({ name: "Late", ward: "B", notes: "", visits: 0 }, { space });
    const other = await db.patients.insert({ name: "Private", ward: "B", notes: "", visits: 0 });
    now += 60_000;
    const report = await db.restore(space, { to: new Date(point) });
    expect(report).toMatchObject({ restored: 2, deleted: 1, unchanged: 0, skipped: 0, commits: 1 });
    const rows = await db.patients.orderBy("name").toArray();
    expect(rows.map((r) => [r.name, r.notes, r.visits])).toEqual([
      ["Edited", "e1", 2],
      ["Kept", "k", 0],
      ["Private", "", 0],
      ["Removed", "r", 0],
    ]);
    expect(await db.patients.get(late)).toBeUndefined();
    expect((await db.patients.history(kept)).length).toBe(1);
    expect((await db.patients.history(late)).at(-1)).toMatchObject({
      op: "delete",
      restoredFrom: `@${point}`,
    });
    expect(await db.patients.get(other)).toBeDefined();
    // To a commit: right after the first edit.
    const firstEdit = (await db.patients.history(edited))[1]!.commit;
    await db.restore(space, { to: firstEdit });
    expect((await db.patients.get(edited))!.notes).toBe("e2");
    expect(await db.patients.get(removed)).toBeDefined(); // the delete came after that commit
    expect(await db.patients.get(late)).toBeUndefined();
  });

  it("writes commits within the size limit for many records", async () => {
    let now = 1_000_000;
    const db = await open(() => now);
    const space = await db.createSpace({ name: "Big" });
    const memo = "x".repeat(8000);
    const ids: string[] = [];
    for (let k = 0; k < 4; k++)
      await db.transact(async (tx) => {
        for (let i = 0; i < 75; i++)
          ids.push(
            await tx.patients.insert(
              { name: `P${k}-${i}`, ward: "A", notes: "", visits: 0, memo },
              { space },
            ),
          );
      });
    now += 1000;
    const point = now;
    now += 1000;
    for (let k = 0; k < 4; k++)
      await db.transact(async (tx) => {
        for (const id of ids.slice(k * 75, k * 75 + 75))
          await tx.patients.update(id, (p) => void (p.memo = "y".repeat(8000)));
      });
    const report = await db.restore(space, { to: point });
    expect(report.restored).toBe(300);
    expect(report.commits).toBeGreaterThanOrEqual(3);
    expect((await db.patients.get(ids[299]!))!.memo).toBe(memo);
    const last = (await db.exportCommits({}, { spaces: [space.id] })).at(-1)!;
    expect(last.changes.length).toBeLessThanOrEqual(100);
  });

  it("needs the writer role", async () => {
    const relay = await RelayHarness.start();
    const [a, b] = await Promise.all([
      openDevice<{ patients: P }>("restore-admin", collections as never),
      openDevice<{ patients: P }>("restore-reader", collections as never),
    ]);
    for (const x of [a, b]) x.online(relay.url);
    const space = await a.db.createSpace({ name: "Roles" });
    const id = await a.db.patients.insert({ name: "R", ward: "A", notes: "1", visits: 0 }, { space });
    await a.db.patients.update(id, (p) => void (p.notes = "2"));
    const link = await a.db.invite(space, { role: "reader", me: "Admin" });
    await relayAcknowledged(a.db, space.id);
    await b.db.join(link, { name: "Reader", relay: relay.url });
    await waitFor(b.db.patients.live(), (r) => r.length === 1 && r[0]!.notes === "2", 30_000, "b reads");
    await waitFor(b.db.members(space), (m) => m.role === "reader", 30_000, "b knows it is a reader");
    const first = (await b.db.patients.history(id))[0]!.commit;
    await expect(b.db.patients.restore(id, first)).rejects.toBeInstanceOf(NotPermitted);
    await expect(b.db.restore(space, { to: first })).rejects.toBeInstanceOf(NotPermitted);
    // The admin may.
    await a.db.restore(space, { to: first });
    expect((await a.db.patients.get(id))!.notes).toBe("1");
  });
});

describe("restore and sync", () => {
  it("reaches a second replica and merges with a concurrent edit the same way on both", async () => {
    const relay = inProcessRelay();
    const a = await open();
    const b = await open();
    const space = await a.createSpace({ name: "Sync" });
    await b.join(await a.invite(space, "https://app.example/"));
    const on = (db: Database<{ patients: P }>) => {
      const stop = db.sync({ transports: [memoryTransport(relay.accept)] });
      cleanups.push(stop);
      return stop;
    };
    let stopA = on(a);
    let stopB = on(b);
    const id = await a.patients.insert({ name: "Cy", ward: "A", notes: "Alpha.", visits: 1 }, { space });
    await a.patients.update(id, (p) => {
      p.notes = "Alpha. Beta.";
      p.ward = "C";
    });
    const at = (db: Database<{ patients: P }>, f: (p: P | undefined) => boolean, what: string) =>
      waitFor(
        db.patients.live((c) => c.get(id)),
        (p) => f(p as P | undefined),
        20_000,
        what,
      );
    await at(b, (p) => p?.notes === "Alpha. Beta.", "b has the edit");
    const first = (await a.patients.history(id))[0]!.commit;
    stopA();
    stopB();
    // Concurrently: a restores the first version, b appends to the note and counts a visit.
    await a.patients.restore(id, first);
    await b.patients.update(id, (p) => {
      p.notes = "Alpha. Beta. Gamma.";
      asCounter(p.visits).increment();
    });
    stopA = on(a);
    stopB = on(b);
    const merged = (p: P | undefined) => p?.notes === "Alpha. Gamma." && p.visits === 2 && p.ward === "A";
    await at(a, merged, "a merged");
    await at(b, merged, "b merged");
    expect(await a.patients.get(id)).toEqual(await b.patients.get(id));
    const hb = await b.patients.history(id);
    expect(hb.some((e) => e.restoredFrom === first && e.device === a.deviceId && e.verified)).toBe(true);
  });
});
