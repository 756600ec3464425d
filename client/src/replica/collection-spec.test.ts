import { describe, expect, it } from "vitest";
import { openDatabase } from "../database.ts";
import { SchemaError, ValidationError } from "../errors.ts";
import { collection } from "./collection-declaration.ts";
import { parseCollectionSpec } from "./collection-spec.ts";

describe("collection declarations", () => {
  it("parses plain, compound and multi-entry indexes, adding the id key", () => {
    const s = parseCollectionSpec("patients", {
      indexes: "name, [ward+name], *tags",
      text: ["notes"],
      counters: ["visits"],
    });
    expect(s.dexieSchema).toBe("id, name, [ward+name], *tags");
    expect(s.indexes.map((i) => [i.name, i.multi, i.compound])).toEqual([
      ["name", false, false],
      ["[ward+name]", false, true],
      ["tags", true, false],
    ]);
    expect(parseCollectionSpec("visits", "id, patientId").dexieSchema).toBe("id, patientId");
  });
  it("refuses what a replicated database cannot honour", () => {
    expect(() => parseCollectionSpec("p", "id, &email")).toThrow(SchemaError);
    expect(() => parseCollectionSpec("p", "++id")).toThrow(SchemaError);
    expect(() => parseCollectionSpec("_p", "id")).toThrow(SchemaError);
    expect(() => parseCollectionSpec("p", "id, name, name")).toThrow(SchemaError);
    expect(() => parseCollectionSpec("p", { indexes: "id", text: ["a"], counters: ["a"] })).toThrow(
      SchemaError,
    );
  });
  it("refuses collection names that clash with the database API", async () => {
    await expect(openDatabase({ name: "spec-clash", collections: { close: "id" } })).rejects.toBeInstanceOf(
      SchemaError,
    );
  });
  it("refuses values it cannot store, with the field named", async () => {
    const db = await openDatabase({ name: "spec-values", collections: { things: "id" } });
    await expect(db.things.insert({ id: "mine" })).rejects.toBeInstanceOf(ValidationError);
    // Like JSON, an undefined field is left out rather than refused.
    const u = await db.things.insert({ a: undefined as unknown as string, b: { c: undefined } });
    expect(await db.things.get(u)).toEqual({ id: u, b: {} });
    await expect(db.things.insert({ list: [1, undefined] })).rejects.toThrow(/list\.1/);
    await expect(db.things.insert({ when: new Map() as unknown as string })).rejects.toThrow(/Map/);
    await expect(db.things.insert({ n: Number.NaN })).rejects.toThrow(/finite/);
    await expect(db.things.update("0190a000-0000-7000-8000-000000000000", () => {})).rejects.toMatchObject({
      code: "NotFound",
    });
    const id = await db.things.insert({ a: 1 });
    await expect(
      db.things.update(id, (d) => void ((d as Record<string, unknown>).$deleted = false)),
    ).rejects.toBeInstanceOf(ValidationError);
    expect(await db.things.get(id)).toEqual({ id, a: 1 });
    await db.close();
  });
});

describe("transaction size", () => {
  it("refuses a transaction too large to sync, writing nothing", async () => {
    const db = await openDatabase({ name: "spec-size", collections: { things: "id" } });
    const big = "x".repeat(200_000);
    await expect(
      db.transact(async (tx) => {
        for (let i = 0; i < 6; i++) await tx.things.insert({ big });
      }),
    ).rejects.toThrow(/too large to sync/);
    expect(await db.things.count()).toBe(0);
    await db.transact(async (tx) => {
      for (let i = 0; i < 3; i++) await tx.things.insert({ big });
    });
    expect(await db.things.count()).toBe(3);
    await db.close();
  });
});

describe("API edges", () => {
  it("names the index when a query uses an undeclared one, and refuses API names as collections", async () => {
    const db = await openDatabase({ name: "spec-edges", collections: { things: "id, name, *tags, [a+b]" } });
    // The compiler refuses an undeclared index too; the run-time check is for untyped callers.
    // @ts-expect-error "nope" is not a declared index
    expect(() => db.things.where("nope")).toThrow(SchemaError);
    // @ts-expect-error "nope" is not a declared index
    expect(() => db.things.orderBy("nope")).toThrow(/not an index of "things"/);
    await db.things.insert({ name: "x", tags: ["t"], a: 1, b: 2 });
    expect(await db.things.where("tags").equals("t").count()).toBe(1);
    expect(await db.things.where("[a+b]").equals([1, 2]).count()).toBe(1);
    await db.close();
    await expect(db.spaces()).rejects.toMatchObject({ code: "DatabaseClosed" });
    expect(() => db.things.history("x")).toThrow(/closed/);
    for (const name of ["durability", "constructor", "status", "then"]) {
      await expect(
        openDatabase({ name: `spec-edges-${name}`, collections: { [name]: "id" } }),
      ).rejects.toBeInstanceOf(SchemaError);
    }
  });
  it("removes a field assigned undefined, like insert leaves it out", async () => {
    const db = await openDatabase({ name: "spec-undef", collections: { things: "id" } });
    const id = await db.things.insert({ a: 1, b: 2 });
    await db.things.update(id, (d) => void (d.b = undefined));
    expect(await db.things.get(id)).toEqual({ id, a: 1 });
    await db.close();
  });

  it("collection<T>() declarations work at run time as the plain declaration does, counters typed", async () => {
    interface P {
      name: string;
      notes: string;
      visits: number;
    }
    const decl = { indexes: "id, name", text: ["notes"], counters: ["visits"] } as const;
    expect(collection<P>()(decl)).toBe(decl);
    const db = await openDatabase({ name: "spec-typed", collections: { patients: collection<P>()(decl) } });
    const id = await db.patients.insert({ name: "Ada", notes: "", visits: 0 });
    await db.patients.update(id, (p) => {
      p.visits.increment(2);
      p.notes = "seen";
    });
    expect(await db.patients.where("name").equals("Ada").toArray()).toEqual([
      { id, name: "Ada", notes: "seen", visits: 2 },
    ]);
    await db.close();
  });
});
