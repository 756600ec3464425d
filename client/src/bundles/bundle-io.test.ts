import { afterEach, describe, expect, it } from "vitest";
import { openDatabase, type Database } from "../database.ts";
import { InvalidBundle, NotFound } from "../errors.ts";
import type { SpaceId } from "../types.ts";
import { decodeBundle } from "./bundle.ts";

type P = { name: string };
let n = 0;
const open: Database<{ patients: P }>[] = [];
afterEach(async () => {
  for (const db of open.splice(0)) await db.close();
});
async function device(): Promise<Database<{ patients: P }>> {
  const db = await openDatabase<{ patients: P }>({
    name: `bundle-io-${n++}`,
    collections: { patients: "id, name" },
    persist: false,
  });
  open.push(db);
  return db;
}

describe("bundle export and import", () => {
  it("exports only the space's commits, as the very sealed bytes sync keeps and sends", async () => {
    const a = await device();
    const space = await a.createSpace({ name: "North" });
    await a.patients.insert({ name: "Ada" }, { space });
    await a.patients.insert({ name: "Bob" }, { space });
    await a.patients.insert({ name: "Private" }); // another space: never in this bundle
    const b = await decodeBundle(await a.exportBundle({ space: space.id }));
    expect(b.ranges).toEqual([{ device: a.deviceId, from: 1, to: 2 }]);
    // The sealer kept what it sealed: a second export (and sync) reuses the very same bytes.
    const again = await decodeBundle(await a.exportBundle({ space }));
    expect(again.commits).toEqual(b.commits);
    const kept = (
      await a.replica.dexie.table<{ space: string; seq: number; bytes: Uint8Array }>("_sealed").toArray()
    )
      .filter((r) => r.space === space.id)
      .sort((x, y) => x.seq - y.seq);
    expect(kept.map((r) => r.bytes)).toEqual(b.commits);
  });

  it("accepts a Uint8Array, an ArrayBuffer or a Blob, and refuses anything else as not a bundle", async () => {
    const a = await device();
    const c = await device();
    const space = await a.createSpace({ name: "North" });
    await c.join(await a.invite(space, "https://app.example/"));
    await a.patients.insert({ name: "Ada" }, { space });
    const file = await a.exportBundle({ space });
    expect((await c.importBundle(file.slice().buffer)).applied).toHaveLength(1);
    expect((await c.importBundle(new Blob([file]))).duplicates).toBe(1);
    expect((await c.importBundle(file)).duplicates).toBe(1);
    await expect(c.importBundle("not bytes" as unknown as Uint8Array)).rejects.toBeInstanceOf(InvalidBundle);
    await expect(c.importBundle(new Uint8Array([1, 2, 3]))).rejects.toMatchObject({
      code: "InvalidBundle",
      reason: "not-a-bundle",
    });
  });

  it("exporting a space this device does not hold is NotFound", async () => {
    const a = await device();
    await expect(
      a.exportBundle({ space: "00000000000000000000000000000000" as SpaceId }),
    ).rejects.toBeInstanceOf(NotFound);
  });
});
