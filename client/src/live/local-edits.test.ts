import "fake-indexeddb/auto";
import { afterEach, describe, expect, it } from "vitest";
import { openDatabase } from "../database.ts";
import { QuotaExceeded } from "../errors.ts";

type P = { name: string; ward: string };
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
});
