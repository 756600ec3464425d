import { describe, expect, it } from "vitest";
import { openDatabase, spliceText, ValidationError } from "../index.ts";

let n = 0;
const fresh = () => `db-splice-${Date.now()}-${n++}`;
const collections = { notes: { indexes: "id", text: ["body", "meta.summary"] } };

describe("spliceText", () => {
  it("inserts and removes text at a position of a declared text field, nested ones included", async () => {
    const db = await openDatabase({ name: fresh(), collections });
    const id = await db.notes.insert({ body: "first.", meta: { summary: "ok" }, title: "T" });
    await db.notes.update(id, (d) => spliceText(d, "body", 0, 0, "Ward: "));
    await db.notes.update(id, (d) => spliceText(d, "body", 6, 1, "F"));
    await db.notes.update(id, (d) => spliceText(d, "meta.summary", 2, 0, "!"));
    expect(await db.notes.get(id)).toMatchObject({ body: "Ward: First.", meta: { summary: "ok!" } });
    await db.close();
  });

  it("counts positions in UTF-16 code units, as a textarea does", async () => {
    const db = await openDatabase({ name: fresh(), collections });
    const id = await db.notes.insert({ body: "a😀b" });
    await db.notes.update(id, (d) => spliceText(d, "body", 3, 0, "X"));
    expect((await db.notes.get(id))?.body).toBe("a😀Xb");
    await db.close();
  });

  it("makes an absent field text, and turns a plain string into text", async () => {
    const name = fresh();
    const before = await openDatabase({ name, collections: { notes: "id" } });
    const plain = await before.notes.insert({ body: "plain" });
    const empty = await before.notes.insert({});
    await before.close();
    const db = await openDatabase({ name, collections });
    await db.notes.update(plain, (d) => spliceText(d, "body", 5, 0, " text"));
    await db.notes.update(empty, (d) => spliceText(d, "body", 0, 0, "new"));
    expect((await db.notes.get(plain))?.body).toBe("plain text");
    expect((await db.notes.get(empty))?.body).toBe("new");
    // Text now: a later splice merges as text.
    await db.notes.update(plain, (d) => spliceText(d, "body", 0, 1, "P"));
    expect((await db.notes.get(plain))?.body).toBe("Plain text");
    await db.close();
  });

  it("refuses an undeclared field, a field that is not text, a range outside the text and a non-draft", async () => {
    const db = await openDatabase({ name: fresh(), collections });
    const id = await db.notes.insert({ body: "abc", title: "T", meta: { summary: 3 } });
    const refused = (fn: (d: Record<string, unknown>) => void) =>
      db.notes.update(id, fn).then(
        () => "saved",
        (e: unknown) => (e instanceof ValidationError ? e.message : `other: ${String(e)}`),
      );
    expect(await refused((d) => spliceText(d, "title", 0, 0, "x"))).toMatch(/not text: declare it/);
    expect(await refused((d) => spliceText(d, "meta.summary", 0, 0, "x"))).toMatch(/holds a number/);
    expect(await refused((d) => spliceText(d, "body", 2, 2, "x"))).toMatch(/it has 3 characters/);
    expect(await refused((d) => spliceText(d, "body", -1, 0, "x"))).toMatch(/Cannot splice/);
    expect(await refused((d) => spliceText(d, "body", 0.5, 0, "x"))).toMatch(/Cannot splice/);
    expect(() => spliceText({ body: "abc" }, "body", 0, 0, "x")).toThrow(ValidationError);
    // Nothing of the refused updates was written.
    expect(await db.notes.get(id)).toMatchObject({ body: "abc", title: "T", meta: { summary: 3 } });
    await db.close();
  });
});
