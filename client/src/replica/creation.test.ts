import * as A from "@automerge/automerge";
import { describe, expect, it } from "vitest";
import { openDatabase } from "../database.ts";
import { buildFromCreation, creationOf } from "./creation.ts";
import type { DocRow } from "./stored-rows.ts";

describe("records kept as their creation until edited", () => {
  it("an insert stores rows and JSON only; the first edit builds the document", async () => {
    const db = await openDatabase({
      name: "creation-1",
      collections: { patients: { indexes: "id, name", text: ["notes"] } },
    });
    const id = await db.patients.insert({ name: "Ada", notes: "hi", tags: ["x"], nested: { b: 1, a: 2 } });
    const docs = db.replica.dexie.table<DocRow, string>("_docs");
    const before = (await docs.get(id))!;
    expect(before.bin.length).toBe(0);
    expect(before.create?.json).toEqual({ name: "Ada", nested: { a: 2, b: 1 }, notes: "hi", tags: ["x"] });
    expect(await db.patients.get(id)).toEqual({
      id,
      name: "Ada",
      nested: { a: 2, b: 1 },
      notes: "hi",
      tags: ["x"],
    });
    await db.patients.update(id, (p) => void (p.notes = "hi there"));
    const after = (await docs.get(id))!;
    expect(after.bin.length).toBeGreaterThan(0);
    expect((await db.patients.get(id))?.notes).toBe("hi there");
    const h = await db.patients.history(id);
    expect((await db.patients.readAt(id, h[0]!.commit)).notes).toBe("hi");
    await db.close();
  });

  it("builds the same first change on every replica, so edits from anywhere apply", () => {
    const c = creationOf({ b: "x", a: [1, { z: 2, y: "t" }], n: 3 }, new Set(["b"]), new Set(["n"]))!;
    const one = buildFromCreation("019ab2c3-d4e5-7f00-8123-456789abcdef", c, "aa");
    const two = buildFromCreation(
      "019ab2c3-d4e5-7f00-8123-456789abcdef",
      JSON.parse(JSON.stringify(c)),
      "bb",
    );
    expect(A.getHeads(one)).toEqual(A.getHeads(two));
    expect(A.getAllChanges(one)).toEqual(A.getAllChanges(two));
  });

  it("creates values JSON cannot carry exactly with Automerge at once", async () => {
    const db = await openDatabase({ name: "creation-2", collections: { things: "id" } });
    const id = await db.things.insert({ when: new Date(0), bytes: new Uint8Array([1, 2]) });
    const row = (await db.replica.dexie.table<DocRow, string>("_docs").get(id))!;
    expect(row.create).toBeUndefined();
    expect(row.bin.length).toBeGreaterThan(0);
    expect(await db.things.get(id)).toEqual({ id, bytes: new Uint8Array([1, 2]), when: new Date(0) });
    await db.close();
  });
});
