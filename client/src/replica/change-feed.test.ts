import { describe, expect, it } from "vitest";
import { DatabaseClosed, openDatabase, ValidationError, type Change } from "../index.ts";

let n = 0;
const fresh = () => `db-feed-${Date.now()}-${n++}`;
const collections = {
  patients: { indexes: "id, name", counters: ["visits"] },
  visits: "id, patientId",
};

/** Takes `count` changes from an iterator without ending it. */
async function take(it: AsyncIterator<Change>, count: number): Promise<Change[]> {
  const out: Change[] = [];
  while (out.length < count) {
    const r = await it.next();
    if (r.done) throw new Error("the feed ended");
    out.push(r.value);
  }
  return out;
}

describe("change feed", () => {
  it("lists every commit once, with records, paths, author and a cursor that survives a reload", async () => {
    const name = fresh();
    let db = await openDatabase({ name, collections });
    const ids: string[] = [];
    for (let i = 0; i < 7; i++) ids.push(await db.patients.insert({ name: `p${i}`, visits: 0 }));
    await db.patients.update(ids[0]!, (p) => void (p.name = "Ada"));
    await db.transact(async (tx) => {
      await tx.visits.insert({ patientId: ids[1] });
      await tx.patients.delete(ids[2]!);
    });
    // 9 commits: consume 4 through the iterator, then "reload".
    const it = db.changes({ batchSize: 3 })[Symbol.asyncIterator]();
    const first = await take(it, 4);
    await it.return!();
    expect(first.map((c) => c.records[0]!.id)).toEqual(ids.slice(0, 4));
    expect(first[0]).toMatchObject({
      device: db.deviceId,
      local: true,
      membership: false,
      seq: 1,
      records: [{ collection: "patients", op: "insert", paths: expect.arrayContaining(["name", "visits"]) }],
    });
    const cursor = first[3]!.cursor;
    await db.close();

    db = await openDatabase({ name, collections });
    // Made after the reload, before resuming: delivered too.
    await db.patients.update(ids[3]!, (p) => void (p.name = "late"));
    const rest: Change[] = [];
    const ac = new AbortController();
    for await (const c of db.changes({ since: cursor, signal: ac.signal })) {
      rest.push(c);
      if (rest.length === 6) ac.abort();
    }
    expect(rest.map((c) => c.seq)).toEqual([5, 6, 7, 8, 9, 10]);
    expect(rest[3]!.records).toEqual([{ id: ids[0], collection: "patients", op: "update", paths: ["name"] }]);
    expect(rest[4]!.records.map((r) => [r.collection, r.op])).toEqual([
      ["visits", "insert"],
      ["patients", "delete"],
    ]);
    // Each commit id once across both parts.
    const all = [...first, ...rest].map((c) => c.commit);
    expect(new Set(all).size).toBe(10);
    await db.close();
  });

  it("delivers commits that arrive while it waits, filters by collection, and resumes by batch", async () => {
    const db = await openDatabase({ name: fresh(), collections });
    await db.patients.insert({ name: "before", visits: 0 });
    const seen: Change[] = [];
    const sub = db.changes({ collections: ["visits"] }).subscribe((c) => seen.push(c));
    const now: Change[] = [];
    const sub2 = db.changes({ since: "now" }).subscribe((c) => now.push(c));
    await db.visits.insert({ patientId: "x" });
    await db.patients.insert({ name: "other", visits: 0 });
    await db.transact(async (tx) => {
      await tx.patients.insert({ name: "both", visits: 0 });
      await tx.visits.insert({ patientId: "y" });
    });
    await expect.poll(() => seen.length).toBe(2);
    await expect.poll(() => now.length).toBe(3);
    expect(seen.every((c) => c.records.every((r) => r.collection === "visits"))).toBe(true);
    expect(seen[1]!.records).toHaveLength(1);
    sub.unsubscribe();
    sub2.unsubscribe();
    expect(sub.closed).toBe(true);

    // Batches: a cursor per batch; resuming from the first batch's cursor gives the rest.
    const it = db.changes({ batchSize: 2 }).batches()[Symbol.asyncIterator]();
    const b1 = (await it.next()).value!;
    expect(b1.changes).toHaveLength(2);
    await it.return!();
    const rest: Change[] = [];
    const ac = new AbortController();
    for await (const b of db.changes({ since: b1.cursor, signal: ac.signal }).batches()) {
      rest.push(...b.changes);
      if (rest.length >= 2) ac.abort();
    }
    expect(rest.map((c) => c.seq)).toEqual([3, 4]);
    await db.close();
  });

  it("ends a waiting iteration with DatabaseClosed and refuses a cursor of another database", async () => {
    const a = await openDatabase({ name: fresh(), collections });
    const b = await openDatabase({ name: fresh(), collections });
    await a.patients.insert({ name: "x", visits: 0 });
    const [c] = await take(a.changes()[Symbol.asyncIterator](), 1);
    expect(() => b.changes({ since: c!.cursor })).toThrow(ValidationError);
    expect(() => b.changes({ since: "garbage" })).toThrow(ValidationError);
    expect(() => b.changes({ collections: ["nope"] })).toThrow(ValidationError);

    const it = a.changes({ since: c!.cursor })[Symbol.asyncIterator]();
    const pending = it.next();
    await a.close();
    await expect(pending).rejects.toBeInstanceOf(DatabaseClosed);
    await b.close();
  });

  it("reports remote commits in the order they were applied here", async () => {
    const a = await openDatabase({ name: fresh(), collections });
    const b = await openDatabase({ name: fresh(), collections });
    const space = await a.createSpace({ name: "shared" });
    await b.join(await a.invite(space));
    await a.patients.insert({ name: "from a", visits: 0 }, { space });
    await b.patients.insert({ name: "mine", visits: 0 });
    const feed = b.changes()[Symbol.asyncIterator]();
    const [own] = await take(feed, 1);
    const next = feed.next();
    const report = await b.applyCommits(await a.exportCommits({}, { spaces: [space.id] }));
    expect(report.applied).toHaveLength(1);
    const remote = (await next).value as Change;
    expect(own!.local).toBe(true);
    expect(remote).toMatchObject({ device: a.deviceId, local: false, seq: 1 });
    expect(remote.records[0]!.op).toBe("insert");
    await feed.return!();
    await a.close();
    await b.close();
  });
});
