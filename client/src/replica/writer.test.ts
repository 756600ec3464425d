import { afterEach, describe, expect, it } from "vitest";
import { openDatabase } from "../database.ts";
import { QuotaExceeded } from "../errors.ts";

type P = { name: string; n: number };
const collections = { patients: "id, name, n" };
let n = 0;

const realPut = IDBObjectStore.prototype.put;
const realAdd = IDBObjectStore.prototype.add;
afterEach(() => {
  IDBObjectStore.prototype.put = realPut;
  IDBObjectStore.prototype.add = realAdd;
});

/** Makes the k-th IndexedDB write from now throw the browser's QuotaExceededError (once, or for good). */
function failWriteAt(k: number, forever = false) {
  let count = 0;
  const wrap = (real: typeof realPut) =>
    function (this: IDBObjectStore, ...args: Parameters<typeof realPut>) {
      count++;
      if (count === k || (forever && count >= k))
        throw new DOMException("The quota has been exceeded.", "QuotaExceededError");
      return real.apply(this, args);
    };
  IDBObjectStore.prototype.put = wrap(realPut);
  IDBObjectStore.prototype.add = wrap(realAdd);
  return () => count;
}

describe("the commit writer", () => {
  it("coalesces queued single writes into one IndexedDB transaction", async () => {
    const db = await openDatabase<{ patients: P }>({ name: `writer-${n++}`, collections });
    const before = db.replica.stats.localTransactions;
    await Promise.all(Array.from({ length: 50 }, (_, i) => db.patients.insert({ name: `P${i}`, n: i })));
    expect(db.replica.stats.localCommits).toBe(50);
    expect(db.replica.stats.localTransactions - before).toBe(1);
    expect(await db.patients.count()).toBe(50);
    await db.close();
  });

  for (const k of [1, 2, 3, 4, 5]) {
    it(`a quota failure at write ${k} of a commit is a QuotaExceeded with nothing written and no sequence used`, async () => {
      const db = await openDatabase<{ patients: P }>({ name: `writer-${n++}`, collections });
      const id = await db.patients.insert({ name: "Before", n: 0 });
      const vector = await db.vector();
      failWriteAt(k);
      await expect(
        db.transact(async (tx) => {
          await tx.patients.insert({ name: "A", n: 1 });
          await tx.patients.update(id, (p) => void (p.name = "Changed"));
        }),
      ).rejects.toBeInstanceOf(QuotaExceeded);
      IDBObjectStore.prototype.put = realPut;
      IDBObjectStore.prototype.add = realAdd;
      expect(await db.vector()).toEqual(vector);
      expect(await db.patients.count()).toBe(1);
      expect((await db.patients.get(id))?.name).toBe("Before");
      expect((await db.patients.history(id)).length).toBe(1);
      // The database keeps working, and the next commit takes the next sequence number.
      await db.patients.update(id, (p) => void (p.name = "After"));
      expect((await db.patients.history(id)).map((h) => h.seq)).toEqual([1, 2]);
      expect((await db.patients.get(id))?.name).toBe("After");
      await db.close();
    });
  }

  it("a quota failure that lasts fails every write until storage frees up", async () => {
    const db = await openDatabase<{ patients: P }>({ name: `writer-${n++}`, collections });
    failWriteAt(1, true);
    await expect(db.patients.insert({ name: "A", n: 1 })).rejects.toMatchObject({ code: "QuotaExceeded" });
    await expect(db.patients.insert({ name: "B", n: 2 })).rejects.toMatchObject({ code: "QuotaExceeded" });
    IDBObjectStore.prototype.put = realPut;
    IDBObjectStore.prototype.add = realAdd;
    await db.patients.insert({ name: "C", n: 3 });
    expect((await db.patients.toArray()).map((p) => p.name)).toEqual(["C"]);
    expect((await db.exportCommits({})).map((c) => c.seq)).toEqual([1]);
    await db.close();
  });

  it("applies a batch of remote commits with one applyChanges call per record per chunk", async () => {
    const a = await openDatabase<{ patients: P }>({ name: `writer-${n++}`, collections });
    const b = await openDatabase<{ patients: P }>({ name: `writer-${n++}`, collections });
    const space = await a.createSpace({ name: "S" });
    await b.replica.addSpace({
      id: space.id,
      name: "S",
      key: new Uint8Array(32),
      createdAt: 0,
      private: false,
    });
    const id = await a.patients.insert({ name: "x", n: 0 }, { space });
    for (let i = 1; i <= 40; i++) await a.patients.update(id, (p) => void (p.n = i));
    const report = await b.applyCommits(await a.exportCommits({}, { spaces: [space.id] }));
    expect(report.applied.length).toBe(41);
    expect(b.replica.stats.applyChangesCalls).toBeLessThanOrEqual(b.replica.stats.remoteChunks);
    expect((await b.patients.get(id))?.n).toBe(40);
    await a.close();
    await b.close();
  });
});

describe("durability", () => {
  it("writes every commit in a transaction with strict durability", async () => {
    const seen: (string | undefined)[] = [];
    const real = IDBDatabase.prototype.transaction;
    IDBDatabase.prototype.transaction = function (
      this: IDBDatabase,
      names: string | string[],
      mode?: IDBTransactionMode,
      options?: IDBTransactionOptions,
    ) {
      const list = typeof names === "string" ? [names] : [...names];
      if (mode === "readwrite" && list.includes("_commits")) seen.push(options?.durability);
      return real.call(this, names, mode, options);
    } as typeof real;
    try {
      const db = await openDatabase<{ patients: P }>({ name: `writer-${n++}`, collections });
      await db.patients.insert({ name: "A", n: 1 });
      await db.transact(async (tx) => {
        await tx.patients.insert({ name: "B", n: 2 });
      });
      await db.close();
    } finally {
      IDBDatabase.prototype.transaction = real;
    }
    expect(seen.length).toBeGreaterThanOrEqual(2);
    expect(new Set(seen)).toEqual(new Set(["strict"]));
  });

  it("asks for persistent storage where the browser offers it", async () => {
    const g = globalThis as { navigator?: unknown };
    const had = Object.getOwnPropertyDescriptor(globalThis, "navigator");
    let asked = 0;
    Object.defineProperty(globalThis, "navigator", {
      configurable: true,
      value: { storage: { persist: async () => (asked++, true) } },
    });
    try {
      const db = await openDatabase({ name: `writer-${n++}`, collections });
      expect(asked).toBe(1);
      expect(db.persisted).toBe(true);
      await db.close();
      const quiet = await openDatabase({ name: `writer-${n++}`, collections, persist: false });
      expect(asked).toBe(1);
      await quiet.close();
    } finally {
      if (had) Object.defineProperty(globalThis, "navigator", had);
      else delete g.navigator;
    }
  });
});
