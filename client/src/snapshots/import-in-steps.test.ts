import { Dexie } from "dexie";
import { describe, expect, it, vi } from "vitest";
import { openPatients, snapshotSource } from "../../test/snapshot-source.ts";
import { sliceStats } from "../replica/task-budget.ts";
import type { SpaceId } from "../types.ts";
import { importMarkerKey } from "../replica/interrupted-imports.ts";
import { importSnapshot, readSnapshot } from "./snapshot-io.ts";

let n = 0;
const open = (name = `steps-${n++}`) => openPatients(name);

const source = (records: number, edited: number) => snapshotSource(open, records, edited);

type Db = Awaited<ReturnType<typeof open>>;

/** What `db` holds of `space`: rows, documents, commits, vector, and whether an import is marked. */
async function held(db: Db, space: SpaceId) {
  const { dexie } = db.replica;
  return {
    rows: await db.patients.count(),
    docs: await dexie.table("_docs").where("space").equals(space).count(),
    commits: await dexie
      .table("_commits")
      .where("[space+device+seq]")
      .between([space, "", 0], [space, "\uffff", Infinity])
      .count(),
    vector: await db.vector([space]),
    marked: (await dexie.table("_meta").get(importMarkerKey(space))) !== undefined,
  };
}

describe("a snapshot import in bounded transactions", () => {
  it("writes in several transactions, yielding between them, and the vector only in the last", async () => {
    const { a, space } = await source(900, 300);
    const c = await open();
    await c.join(await a.invite(space, "x:"));
    const snap = await readSnapshot(a.replica, space.id);
    const writes = vi.spyOn(c.replica.dexie, "transaction");
    const yieldsBefore = sliceStats.get("snapshot-write")?.yields ?? 0;
    expect(await importSnapshot(c.replica, snap)).toBe(true);
    const rw = writes.mock.calls.filter(([mode]) => mode === "rw").length;
    // 900 records and their 7 commits: at least one step of commits, four and more of records.
    expect(rw).toBeGreaterThanOrEqual(6);
    expect((sliceStats.get("snapshot-write")?.yields ?? 0) - yieldsBefore).toBeGreaterThanOrEqual(4);
    expect(await c.patients.orderBy("id").toArray()).toEqual(await a.patients.orderBy("id").toArray());
    expect(await c.vector([space.id])).toEqual(await a.vector([space.id]));
    expect((await held(c, space.id)).marked).toBe(false);
  }, 120_000);

  it("answers a query issued during the import before the import ends, without the vector yet", async () => {
    const { a, space } = await source(900, 300);
    const c = await open();
    await c.join(await a.invite(space, "x:"));
    const snap = await readSnapshot(a.replica, space.id);
    const order: string[] = [];
    let query: Promise<unknown> | undefined;
    // Issued as the import opens its fourth write transaction (past the marker, the commits and a step of records).
    let rw = 0;
    const real = c.replica.dexie.transaction.bind(c.replica.dexie) as (...a: unknown[]) => Promise<unknown>;
    vi.spyOn(c.replica.dexie, "transaction").mockImplementation(((...args: unknown[]) => {
      if (args[0] === "rw" && ++rw === 4)
        query = Promise.all([c.patients.where("ward").equals("X").count(), c.vector([space.id])]).then(
          (r) => {
            order.push("query");
            return r;
          },
        );
      return real(...args);
    }) as never);
    const imported = importSnapshot(c.replica, snap).then((ok) => {
      order.push("import");
      return ok;
    });
    expect(await imported).toBe(true);
    const [, vectorMeanwhile] = (await query) as [number, Record<string, number>];
    expect(order).toEqual(["query", "import"]);
    // Mid-import the replica claims nothing of the space: its vector comes with the last transaction.
    expect(vectorMeanwhile).toEqual({});
    expect(await c.patients.where("ward").equals("X").count()).toBe(300);
  }, 120_000);

  it("leaves nothing when a step fails, and the import can run again", async () => {
    const { a, space } = await source(900, 300);
    const c = await open();
    await c.join(await a.invite(space, "x:"));
    const before = await held(c, space.id);
    const snap = await readSnapshot(a.replica, space.id);
    let rw = 0;
    const real = c.replica.dexie.transaction.bind(c.replica.dexie) as (...a: unknown[]) => Promise<unknown>;
    const spy = vi.spyOn(c.replica.dexie, "transaction").mockImplementation(((...args: unknown[]) => {
      // The fifth: past the marker, the commits and some records, before the vector.
      if (args[0] === "rw" && ++rw === 5) return Promise.reject(new Error("disk on fire"));
      return real(...args);
    }) as never);
    await expect(importSnapshot(c.replica, snap)).rejects.toMatchObject({ code: "ValidationError" });
    spy.mockRestore();
    expect(await held(c, space.id)).toEqual(before);
    expect(await importSnapshot(c.replica, snap)).toBe(true);
    expect(await c.patients.orderBy("id").toArray()).toEqual(await a.patients.orderBy("id").toArray());
  }, 120_000);

  it("a close in the middle leaves a replica that claims nothing, cleaned at the next open", async () => {
    const { a, space } = await source(900, 300);
    const name = `steps-close-${n++}`;
    const c = await open(name);
    await c.join(await a.invite(space, "x:"));
    const before = await held(c, space.id);
    const snap = await readSnapshot(a.replica, space.id);
    let rw = 0;
    let closing: Promise<void> | undefined;
    const real = c.replica.dexie.transaction.bind(c.replica.dexie) as (...a: unknown[]) => Promise<unknown>;
    vi.spyOn(c.replica.dexie, "transaction").mockImplementation(((...args: unknown[]) => {
      const tx = real(...args);
      // The page closes the database while the import's fourth transaction runs.
      if (args[0] === "rw" && ++rw === 4) closing = c.close();
      return tx;
    }) as never);
    await expect(importSnapshot(c.replica, snap)).rejects.toBeDefined();
    await closing;
    // What the close left: the marker, and commits of a space whose vector is still empty.
    const raw = new Dexie(name);
    await raw.open();
    expect(await raw.table("_meta").get(importMarkerKey(space.id))).toBeDefined();
    expect(await raw.table("_commits").count()).toBeGreaterThan(before.commits);
    expect(await raw.table("_vectors").where("space").equals(space.id).count()).toBe(0);
    raw.close();
    const again = await open(name);
    const after = await held(again, space.id);
    expect(after).toEqual(before);
    expect(await importSnapshot(again.replica, snap)).toBe(true);
    expect(await again.patients.orderBy("id").toArray()).toEqual(await a.patients.orderBy("id").toArray());
    expect(await again.vector([space.id])).toEqual(await a.vector([space.id]));
  }, 120_000);

  it("another handle opening meanwhile removes the import, which then leaves nothing and says so", async () => {
    const { a, space } = await source(900, 300);
    const name = `steps-other-${n++}`;
    const c = await open(name);
    await c.join(await a.invite(space, "x:"));
    const before = await held(c, space.id);
    const snap = await readSnapshot(a.replica, space.id);
    let rw = 0;
    let other: Promise<Db> | undefined;
    const real = c.replica.dexie.transaction.bind(c.replica.dexie) as (...a: unknown[]) => Promise<unknown>;
    vi.spyOn(c.replica.dexie, "transaction").mockImplementation(((...args: unknown[]) => {
      if (args[0] === "rw") rw++;
      // A second tab opens the database during the import's fourth transaction; the fifth waits for it.
      if (rw === 4 && !other) other = open(name);
      if (rw === 5 && other) return other.then(() => real(...args));
      return real(...args);
    }) as never);
    expect(await importSnapshot(c.replica, snap)).toBe(false);
    expect(await held(c, space.id)).toEqual(before);
    const second = await other!;
    expect(await held(second, space.id)).toEqual(before);
  }, 120_000);
});
