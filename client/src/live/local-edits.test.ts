import "fake-indexeddb/auto";
import { afterEach, describe, expect, it } from "vitest";
import { openDatabase } from "../database.ts";
import { QuotaExceeded } from "../errors.ts";

type P = { name: string; ward: string; tags?: string[] };
const collections = { patients: "id, name, ward" };
let n = 0;

const realPut = IDBObjectStore.prototype.put;
afterEach(() => {
  IDBObjectStore.prototype.put = realPut;
});

describe("a live query and this tab's own commits", () => {
  it("shows an update before the update resolves (before IndexedDB has stored it)", async () => {
    const db = await openDatabase<{ patients: P }>({ name: `local-edits-${n++}`, collections });
    const id = await db.patients.insert({ name: "Ada", ward: "A" });
    const log: string[] = [];
    const sub = db.patients
      .live((c) => c.where("ward").equals("A"))
      .subscribe((rows) => log.push(`rows ${rows.map((r) => r.name).join(",")}`));
    await expect.poll(() => log.length).toBe(1);
    const saved = db.patients.update(id, (d) => void (d.name = "Ada L.")).then(() => log.push("saved"));
    // Announced synchronously while the transaction is prepared, so before any IndexedDB callback.
    await saved;
    expect(log.slice(0, 3)).toEqual(["rows Ada", "rows Ada L.", "saved"]);
    sub.unsubscribe();
    await db.close();
  });

  it("keeps the shown row when the stored one is read back equal, and follows later commits", async () => {
    const db = await openDatabase<{ patients: P }>({ name: `local-edits-${n++}`, collections });
    const a = await db.patients.insert({ name: "Ada", ward: "A" });
    const b = await db.patients.insert({ name: "Alan", ward: "A" });
    const emissions: { id: string; name: string }[][] = [];
    const sub = db.patients
      .live((c) => c.where("ward").equals("A"))
      .subscribe((rows) => emissions.push(rows));
    await expect.poll(() => emissions.length).toBe(1);
    await db.patients.update(a, (d) => void (d.name = "Ada L."));
    const shown = emissions.at(-1)!.find((r) => r.id === a)!;
    expect(shown.name).toBe("Ada L.");
    await db.patients.update(b, (d) => void (d.name = "Alan T."));
    await db.patients.update(b, (d) => void (d.ward = "B"));
    await expect.poll(() => emissions.at(-1)!.map((r) => r.name)).toEqual(["Ada L."]);
    // The row of `a` read back after its write equalled the announced one: same object, no re-render.
    expect(emissions.at(-1)![0]).toBe(shown);
    sub.unsubscribe();
    await db.close();
  });

  it("goes back to the stored rows when the write fails", async () => {
    const db = await openDatabase<{ patients: P }>({ name: `local-edits-${n++}`, collections });
    const id = await db.patients.insert({ name: "Ada", ward: "A" });
    const emissions: string[][] = [];
    const sub = db.patients
      .live((c) => c.where("ward").equals("A"))
      .subscribe((rows) => emissions.push(rows.map((r) => r.name)));
    await expect.poll(() => emissions.length).toBe(1);
    IDBObjectStore.prototype.put = function () {
      throw new DOMException("The quota has been exceeded.", "QuotaExceededError");
    };
    await expect(db.patients.update(id, (d) => void (d.name = "Lost"))).rejects.toBeInstanceOf(QuotaExceeded);
    IDBObjectStore.prototype.put = realPut;
    expect(emissions).toContainEqual(["Lost"]);
    await expect.poll(() => emissions.at(-1)).toEqual(["Ada"]);
    expect(await db.patients.get(id)).toMatchObject({ name: "Ada" });
    sub.unsubscribe();
    await db.close();
  });

  it("keeps every change of a burst of unawaited updates to one record, from two tabs at once", async () => {
    const name = `local-edits-${n++}`;
    const tab1 = await openDatabase<{ patients: P }>({ name, collections });
    const tab2 = await openDatabase<{ patients: P }>({ name, collections });
    const id = await tab1.patients.insert({ name: "Ada", ward: "A", tags: [] });
    const shown: string[][] = [];
    const sub = tab1.patients
      .live((c) => c.where("ward").equals("A"))
      .subscribe((rows) => {
        if (rows[0]) shown.push(rows[0].tags ?? []);
      });
    await expect.poll(() => shown.length).toBeGreaterThan(0);
    // Queued while earlier ones are still being written: later ones build on the cache, not on a read.
    const burst = (db: typeof tab1, tab: string) =>
      Array.from({ length: 15 }, (_, i) => db.patients.update(id, (d) => void d.tags!.push(`${tab}${i}`)));
    await Promise.all([...burst(tab1, "a"), ...burst(tab2, "b")]);
    const tags = (await tab1.patients.get(id))!.tags!;
    expect(tags).toHaveLength(30);
    expect(tags.filter((t) => t.startsWith("a"))).toEqual(Array.from({ length: 15 }, (_, i) => `a${i}`));
    expect(tags.filter((t) => t.startsWith("b"))).toEqual(Array.from({ length: 15 }, (_, i) => `b${i}`));
    expect((await tab2.patients.get(id))!.tags).toEqual(tags);
    await expect.poll(() => shown.at(-1)).toEqual(tags);
    sub.unsubscribe();
    await Promise.all([tab1.close(), tab2.close()]);
  });
});
