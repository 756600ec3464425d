import { describe, expect, it } from "vitest";
import { openDatabase } from "../database.ts";
import { onVectorWrite } from "./on-vector-write.ts";

const collections = { patients: "id, name" };
let n = 0;

describe("onVectorWrite", () => {
  it("calls once at start, then after each committed write of _vectors only, and stops when told", async () => {
    const name = `vector-write-${n++}`;
    const db = await openDatabase<{ patients: { name: string } }>({ name, collections });
    let calls = 0;
    const off = onVectorWrite(db.replica.dexie, () => calls++);
    await Promise.resolve();
    expect(calls).toBe(1);
    // A local commit writes its vector row.
    await db.patients.insert({ name: "Ada" });
    expect(calls).toBe(2);
    // A write of another table is not a vector write.
    await db.replica.dexie.table("_meta").put({ key: "unrelated", value: 1 });
    expect(calls).toBe(2);
    // Another handle on the same database (another tab, in Node) is reported too.
    const other = await openDatabase<{ patients: { name: string } }>({ name, collections });
    await other.patients.insert({ name: "Grace" });
    expect(calls).toBe(3);
    off();
    await db.patients.insert({ name: "Edsger" });
    expect(calls).toBe(3);
    await other.close();
    await db.close();
  });

  it("a throwing listener does not fail the write that fired it", async () => {
    const db = await openDatabase<{ patients: { name: string } }>({
      name: `vector-write-${n++}`,
      collections,
    });
    const errors: unknown[] = [];
    const realError = console.error;
    console.error = (...args: unknown[]) => void errors.push(args);
    try {
      const off = onVectorWrite(db.replica.dexie, () => {
        throw new Error("listener");
      });
      const id = await db.patients.insert({ name: "Ada" });
      expect((await db.patients.get(id))?.name).toBe("Ada");
      off();
    } finally {
      console.error = realError;
    }
    expect(errors.length).toBeGreaterThan(0);
    await db.close();
  });
});
