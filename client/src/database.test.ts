import { describe, expect, it } from "vitest";
import { asCounter, openDatabase } from "./index.ts";

let n = 0;
const fresh = () => `db-basic-${Date.now()}-${n++}`;
const collections = {
  patients: { indexes: "id, name, ward, [ward+name], *tags", text: ["notes"], counters: ["visits"] },
  visits: "id, patientId, date",
};

describe("records", () => {
  it("inserts, gets, updates and deletes", async () => {
    const db = await openDatabase({ name: fresh(), collections });
    const id = await db.patients.insert({ name: "Ada", ward: "A", tags: ["x"], notes: "hi", visits: 0 });
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7/);
    expect(await db.patients.get(id)).toEqual({
      id,
      name: "Ada",
      ward: "A",
      tags: ["x"],
      notes: "hi",
      visits: 0,
    });
    await db.patients.update(id, (p) => {
      p.name = "Ada L.";
      p.notes = "hi there";
      (p.tags as string[]).push("y");
      asCounter(p.visits).increment(2);
    });
    expect(await db.patients.get(id)).toEqual({
      id,
      name: "Ada L.",
      ward: "A",
      tags: ["x", "y"],
      notes: "hi there",
      visits: 2,
    });
    expect(await db.patients.where("tags").equals("y").count()).toBe(1);
    await db.patients.delete(id);
    expect(await db.patients.get(id)).toBeUndefined();
    const h = await db.patients.history(id);
    expect(h.map((e) => e.op)).toEqual(["insert", "update", "delete"]);
    expect(h[1]!.paths).toEqual(["name", "notes", "tags", "visits"]);
    expect((await db.patients.readAt(id, h[0]!.commit)).name).toBe("Ada");
    await db.close();
  });
});
