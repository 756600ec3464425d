import { afterEach, describe, expect, it } from "vitest";
import { openDatabase } from "../database.ts";
import { QuotaExceeded } from "../errors.ts";
import { collection } from "./collection-declaration.ts";

type P = { name: string; n: number };
const collections = { patients: "id, name, n" };
let n = 0;

const realPut = IDBObjectStore.prototype.put;
afterEach(() => {
  IDBObjectStore.prototype.put = realPut;
  seen = { readonly: 0, readwrite: 0 };
});

// Dexie binds `IDBDatabase.transaction` when it opens a database, so the count is installed before any.
let seen = { readonly: 0, readwrite: 0 };
const realTransaction = IDBDatabase.prototype.transaction;
IDBDatabase.prototype.transaction = function (
  this: IDBDatabase,
  ...args: Parameters<typeof realTransaction>
): IDBTransaction {
  if (args[1] === "readwrite") seen.readwrite++;
  else seen.readonly++;
  return realTransaction.apply(this, args);
};

/** Counts the IndexedDB transactions opened from now on, by mode. */
function countTransactions(): { readonly: number; readwrite: number } {
  seen = { readonly: 0, readwrite: 0 };
  return seen;
}

async function fresh(name = `warm-update-${n++}`) {
  return openDatabase<{ patients: P }>({ name, collections });
}

describe("a single-record update", () => {
  it("of a document this page holds is ONE IndexedDB transaction (no read transaction before it)", async () => {
    const db = await fresh();
    const id = await db.patients.insert({ name: "Ada", n: 0 });
    // Built from its creation on this first edit (the creation is cached by the insert).
    let seen = countTransactions();
    await db.patients.update(id, (p) => void (p.n = 1));
    expect(seen).toEqual({ readonly: 0, readwrite: 1 });
    // And again with the built document cached.
    seen = countTransactions();
    await db.patients.update(id, (p) => void (p.n = 2));
    expect(seen).toEqual({ readonly: 0, readwrite: 1 });
    expect((await db.patients.get(id))?.n).toBe(2);
    expect((await db.patients.history(id)).length).toBe(3);
    await db.close();
  });

  it("of a document not cached reads it first (two transactions)", async () => {
    const db = await fresh();
    const id = await db.patients.insert({ name: "Ada", n: 0 });
    db.replica.cache.clear();
    const seen = countTransactions();
    await db.patients.update(id, (p) => void (p.n = 1));
    expect(seen).toEqual({ readonly: 1, readwrite: 1 });
    expect((await db.patients.get(id))?.n).toBe(1);
    await db.close();
  });

  it("reads the stored document again once another tab wrote it, and builds on that tab's edit", async () => {
    const name = `warm-update-${n++}`;
    const tab1 = await fresh(name);
    const id = await tab1.patients.insert({ name: "Ada", n: 0 });
    await tab1.patients.update(id, (p) => void (p.n = p.n + 1));
    const tab2 = await fresh(name);
    await tab2.patients.update(id, (p) => void (p.n = p.n + 1));
    expect(tab1.replica.cache.get(id)?.stale).toBe(true);
    const seen = countTransactions();
    await tab1.patients.update(id, (p) => void (p.n = p.n + 1));
    expect(seen).toEqual({ readonly: 1, readwrite: 1 });
    // A sequence of increments, not concurrent writes of the same value.
    expect((await tab1.patients.get(id))?.n).toBe(3);
    expect(tab1.replica.cache.get(id)?.stale).toBe(false);
    // This page's own writes never mark its cache stale.
    await tab1.patients.update(id, (p) => void (p.name = "Ada L."));
    expect(tab1.replica.cache.get(id)?.stale).toBe(false);
    await tab2.close();
    await tab1.close();
  });

  it("a write another tab makes while this tab's edit was built is merged, nothing lost", async () => {
    const name = `warm-update-${n++}`;
    const tab1 = await fresh(name);
    const id = await tab1.patients.insert({ name: "Ada", n: 0 });
    await tab1.patients.update(id, (p) => void (p.n = 1));
    const tab2 = await fresh(name);
    await tab2.patients.update(id, (p) => void (p.name = "Ada L."));
    // As if tab2's report had not arrived yet: tab1 edits its cached (older) document.
    tab1.replica.cache.get(id)!.stale = false;
    await tab1.patients.update(id, (p) => void (p.n = 2));
    expect(await tab1.patients.get(id)).toMatchObject({ name: "Ada L.", n: 2 });
    expect(await tab2.patients.get(id)).toMatchObject({ name: "Ada L.", n: 2 });
    const seqs = (await tab1.patients.history(id)).map((h) => h.commit);
    expect(new Set(seqs).size).toBe(seqs.length);
    await tab2.close();
    await tab1.close();
  });

  it("a failed warm write resolves nothing, stores nothing, and leaves a cache the next update can trust", async () => {
    const db = await fresh();
    const id = await db.patients.insert({ name: "Ada", n: 0 });
    await db.patients.update(id, (p) => void (p.n = 1));
    const vector = await db.vector();
    IDBObjectStore.prototype.put = function (this: IDBObjectStore, ...args: Parameters<typeof realPut>) {
      throw new DOMException("The quota has been exceeded.", "QuotaExceededError");
    };
    let resolved = false;
    const failed = db.patients.update(id, (p) => void (p.n = 2)).then(() => (resolved = true));
    await expect(failed).rejects.toBeInstanceOf(QuotaExceeded);
    expect(resolved).toBe(false);
    IDBObjectStore.prototype.put = realPut;
    expect(await db.vector()).toEqual(vector);
    expect((await db.patients.get(id))?.n).toBe(1);
    // The failed change is in no cached document: the next edit builds on the stored version.
    expect(db.replica.cache.get(id)).toBeUndefined();
    await db.patients.update(id, (p) => void (p.n = p.n + 10));
    expect((await db.patients.get(id))?.n).toBe(11);
    expect((await db.patients.history(id)).length).toBe(3);
    await db.close();
  });

  it("an escrow take reads the stored record even when the cache is not marked stale", async () => {
    type Site = { name: string; doses: number };
    const sites = { sites: collection<Site>()({ indexes: "id, name", counters: { doses: { min: 0 } } }) };
    const name = `warm-update-${n++}`;
    const tab1 = await openDatabase({ name, collections: sites });
    const tab2 = await openDatabase({ name, collections: sites });
    const id = await tab1.sites.insert({ name: "North", doses: 10 });
    await tab2.sites.update(id, (s) => void (s.name = "North clinic"));
    await tab1.sites.take(id, "doses", 6);
    // As if tab1's report had not reached tab2 yet (a browser delivers it later, over a channel).
    tab2.replica.cache.get(id)!.stale = false;
    await expect(tab2.sites.take(id, "doses", 6)).rejects.toMatchObject({ code: "InsufficientRights" });
    for (const db of [tab1, tab2]) expect((await db.sites.get(id))?.doses).toBe(4);
    await tab2.close();
    await tab1.close();
  });
});
