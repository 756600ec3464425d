import Dexie from "dexie";
import { describe, expect, it } from "vitest";
import { DecryptError, Locked, ValidationError, WrongPassphrase, openDatabase } from "../index.ts";
import { SEALED_FIELD } from "./at-rest-middleware.ts";

let n = 0;
const fresh = () => `db-lock-${Date.now()}-${n++}`;
const collections = { notes: { indexes: "id, title", text: ["body"] } };
const lock = { passphrase: "correct horse" };

/** The stored rows of `table`, read past Shoal (Dexie without the at-rest middleware). */
async function rawRows(name: string, table: string): Promise<Record<string, unknown>[]> {
  const raw = new Dexie(name);
  await raw.open();
  try {
    return (await raw.table(table).toArray()) as Record<string, unknown>[];
  } finally {
    raw.close();
  }
}

describe("at-rest lock", () => {
  it("keeps indexed fields in clear and the rest encrypted, and reads them back", async () => {
    const name = fresh();
    const db = await openDatabase({ name, collections, lock });
    const id = await db.notes.insert({ title: "Visit", body: "secret-body", extra: { n: 1 } });
    await db.notes.update(id, (d) => void (d.body += " more"));
    expect(await db.notes.get(id)).toEqual({ id, title: "Visit", body: "secret-body more", extra: { n: 1 } });
    expect(await db.notes.where("title").equals("Visit").toArray()).toHaveLength(1);
    await db.close();
    const [row] = await rawRows(name, "notes");
    expect(Object.keys(row!).sort()).toEqual([SEALED_FIELD, "id", "title"].sort());
    expect(row![SEALED_FIELD]).toBeInstanceOf(Uint8Array);
    const again = await openDatabase({ name, collections, lock });
    expect((await again.notes.get(id))?.body).toBe("secret-body more");
    await again.close();
  });

  it("binds each value to its record: one moved to another record on disk does not open", async () => {
    const name = fresh();
    const db = await openDatabase({ name, collections, lock });
    const first = await db.notes.insert({ title: "a", body: "first" });
    const second = await db.notes.insert({ title: "b", body: "second" });
    await db.close();
    const raw = new Dexie(name);
    await raw.open();
    const rowOf = async (id: string) => (await raw.table("notes").get(id)) as Record<string, unknown>;
    await raw
      .table("notes")
      .put({ ...(await rowOf(second)), [SEALED_FIELD]: (await rowOf(first))[SEALED_FIELD] });
    raw.close();
    const again = await openDatabase({ name, collections, lock });
    expect((await again.notes.get(first))?.body).toBe("first");
    await expect(again.notes.get(second)).rejects.toThrow(DecryptError);
    await again.close();
  });

  it("refuses a wrong passphrase, and an open without the lock, typed and losing nothing", async () => {
    const name = fresh();
    const db = await openDatabase({ name, collections, lock });
    const id = await db.notes.insert({ title: "t", body: "b" });
    await db.close();
    await expect(openDatabase({ name, collections, lock: { passphrase: "wrong" } })).rejects.toThrow(
      WrongPassphrase,
    );
    await expect(openDatabase({ name, collections })).rejects.toThrow(Locked);
    const again = await openDatabase({ name, collections, lock });
    expect((await again.notes.get(id))?.body).toBe("b");
    await again.close();
  });

  it("locks and unlocks: reads and writes throw Locked meanwhile, live queries end with it", async () => {
    const db = await openDatabase({ name: fresh(), collections, lock });
    const id = await db.notes.insert({ title: "t", body: "b" });
    const seen: unknown[] = [];
    const sub = db.notes
      .live()
      .subscribe({ next: (rows) => seen.push(rows.length), error: (e) => seen.push(e) });
    await expect.poll(() => seen.length).toBeGreaterThan(0);
    await db.lock();
    expect(db.lockState.get()).toBe("locked");
    expect(() => db.notes.get(id)).toThrow(Locked);
    await expect(db.notes.insert({ title: "x", body: "y" })).rejects.toThrow(Locked);
    await expect.poll(() => seen.some((e) => e instanceof Locked)).toBe(true);
    await expect(db.unlock("nope")).rejects.toThrow(WrongPassphrase);
    expect(db.lockState.get()).toBe("locked");
    await db.unlock(lock.passphrase);
    expect((await db.notes.get(id))?.body).toBe("b");
    await db.notes.insert({ title: "x", body: "y" });
    // Ended by the error (an observable's contract): subscribing again reads again.
    const again: number[] = [];
    const sub2 = db.notes.live().subscribe((rows) => again.push(rows.length));
    await expect.poll(() => again.at(-1)).toBe(2);
    sub.unsubscribe();
    sub2.unsubscribe();
    await db.close();
  });

  it("changes the passphrase: the old one stops working, the data stays", async () => {
    const name = fresh();
    const db = await openDatabase({ name, collections, lock });
    const id = await db.notes.insert({ title: "t", body: "kept" });
    await expect(db.changePassphrase("wrong", "new one")).rejects.toThrow(WrongPassphrase);
    await db.changePassphrase(lock.passphrase, "new one");
    await db.lock();
    await expect(db.unlock(lock.passphrase)).rejects.toThrow(WrongPassphrase);
    await db.unlock("new one");
    expect((await db.notes.get(id))?.body).toBe("kept");
    await db.close();
    const again = await openDatabase({ name, collections, lock: { passphrase: "new one" } });
    expect((await again.notes.get(id))?.body).toBe("kept");
    await again.close();
  });

  it("locks by itself after its idle time", async () => {
    const db = await openDatabase({ name: fresh(), collections, lock: { ...lock, idleMinutes: 0.001 } });
    await db.notes.insert({ title: "t", body: "b" });
    await new Promise<void>((resolve) => db.lockState.subscribe((s) => s === "locked" && resolve()));
    expect(() => db.notes.toArray()).toThrow(Locked);
    await db.close();
  });

  it("refuses to lock a database that already holds data without a lock", async () => {
    const name = fresh();
    const plain = await openDatabase({ name, collections });
    await plain.notes.insert({ title: "t", body: "b" });
    await plain.close();
    await expect(openDatabase({ name, collections, lock })).rejects.toThrow(ValidationError);
    const again = await openDatabase({ name, collections });
    expect(await again.notes.count()).toBe(1);
    await again.close();
  });

  it("costs nothing without a lock: lock() says there is none", async () => {
    const db = await openDatabase({ name: fresh(), collections });
    expect(db.lockState.get()).toBe("unlocked");
    await expect(db.lock()).rejects.toThrow(ValidationError);
    await db.close();
  });
});
