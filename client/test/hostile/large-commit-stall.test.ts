// Issue 12, item 7: applying one large but valid commit (40 records, each a 15,000-character text
// change: 600,000 Automerge operations) must not hold the page in one block. Prints the longest
// event-loop stall while a receiver applies it (no timing assertion: the figure goes in the report).
import { monitorEventLoopDelay } from "node:perf_hooks";
import { afterEach, describe, expect, it } from "vitest";
import { openDatabase, type Database } from "../../src/index.ts";

type P = { name: string; notes: string; ward?: string };
const collections = { patients: { indexes: "id, name", text: ["notes"] } };
const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});
let n = 0;
async function device(): Promise<Database<{ patients: P }>> {
  const db = await openDatabase<{ patients: P }>({
    name: `stall-${process.pid}-${n++}`,
    collections,
    persist: false,
  });
  cleanup.push(() => db.close());
  return db;
}

describe("one large valid commit", () => {
  it("is applied whole, in slices: prints the longest event-loop stall", async () => {
    const a = await device();
    const b = await device();
    const space = await a.createSpace({ name: "Big" });
    await b.join(await a.invite(space, "https://app.example/"));
    const RECORDS = 40;
    const CHARS = 15_000;
    const ids = await a.transact(async (tx) => {
      const out: string[] = [];
      for (let i = 0; i < RECORDS; i++)
        out.push(await tx.patients.insert({ name: `P${i}`, notes: "" }, { space }));
      return out;
    });
    await b.applyCommits(await a.exportCommits({}));
    const since = await a.vector([space.id]);
    await a.transact(async (tx) => {
      for (const [i, id] of ids.entries())
        await tx.patients.update(
          id,
          (p) => void (p.notes = String.fromCharCode(97 + (i % 26)).repeat(CHARS)),
        );
    });
    const [big] = await a.exportCommits(since);
    expect(big!.changes.length).toBe(RECORDS);

    const delay = monitorEventLoopDelay({ resolution: 5 });
    delay.enable();
    const t0 = performance.now();
    const report = await b.applyCommits([big!]);
    const took = performance.now() - t0;
    delay.disable();
    console.log(
      `one commit of ${RECORDS} records x ${CHARS} text ops (${RECORDS * CHARS} ops): applied in ${took.toFixed(0)} ms, longest event-loop stall ${(delay.max / 1e6).toFixed(0)} ms`,
    );
    expect(report.applied).toEqual([big!.id]);
    const rows = await Promise.all(ids.map((id) => b.patients.get(id)));
    expect(rows.every((r, i) => r?.notes === String.fromCharCode(97 + (i % 26)).repeat(CHARS))).toBe(true);
  });

  it("stays all-or-nothing when another tab writes a record it is applying, between its slices", async () => {
    const a = await device();
    const tab1 = await device();
    const name = tab1.name;
    const tab2 = await openDatabase<{ patients: P }>({ name, collections, persist: false });
    cleanup.push(() => tab2.close());
    const space = await a.createSpace({ name: "Tabs" });
    await tab1.join(await a.invite(space, "https://app.example/"));
    const ids = await a.transact(async (tx) => {
      const out: string[] = [];
      for (let i = 0; i < 20; i++)
        out.push(await tx.patients.insert({ name: `P${i}`, notes: "" }, { space }));
      return out;
    });
    await tab1.applyCommits(await a.exportCommits({}));
    const since = await a.vector([space.id]);
    await a.transact(async (tx) => {
      for (const id of ids) await tx.patients.update(id, (p) => void (p.notes = "n".repeat(12_000)));
    });
    const [big] = await a.exportCommits(since);
    const calls = tab1.replica.stats.applyChangesCalls;
    const applying = tab1.applyCommits([big!]);
    // Once tab 1 is in its Automerge work (outside any transaction), tab 2 commits an edit of a record
    // that work already read: tab 1 must notice at its write and redo the chunk on top of it.
    while (tab1.replica.stats.applyChangesCalls === calls) await new Promise((r) => setTimeout(r, 0));
    await tab2.patients.update(ids[0]!, (p) => void (p.name = "edited in tab 2"));
    const report = await applying;
    expect(report.applied).toEqual([big!.id]);
    for (const db of [tab1, tab2]) {
      const first = await db.patients.get(ids[0]!);
      expect(first).toMatchObject({ name: "edited in tab 2", notes: "n".repeat(12_000) });
      const last = await db.patients.get(ids.at(-1)!);
      expect(last?.notes).toBe("n".repeat(12_000));
    }
    // Both edits are in the record's document, not only in its row.
    const tab3 = await openDatabase<{ patients: P }>({ name, collections, persist: false });
    cleanup.push(() => tab3.close());
    await tab3.patients.update(ids[0]!, (p) => void (p.ward = "w"));
    expect(await tab3.patients.get(ids[0]!)).toMatchObject({
      name: "edited in tab 2",
      notes: "n".repeat(12_000),
    });
  });
});
