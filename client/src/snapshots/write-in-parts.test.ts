import { describe, expect, it, vi } from "vitest";
import { openPatients, snapshotSource } from "../../test/snapshot-source.ts";
import { importSnapshot, readSnapshot } from "./snapshot-io.ts";
import type { SnapshotDoc } from "./snapshot-codec.ts";
import { IMPORT_PART } from "./write-in-parts.ts";

let n = 0;
const open = () => openPatients(`parts-${n++}`);

const source = (records: number, edited: number) => snapshotSource(open, records, edited);

describe("a snapshot import in steps", () => {
  it("stores its records in steps of IMPORT_PART, each awaited, and the result is the whole snapshot", async () => {
    const { a, space } = await source(450, 250);
    const c = await open();
    await c.join(await a.invite(space, "x:"));
    const snap = await readSnapshot(a.replica, space.id);
    expect(snap.docs.length).toBeGreaterThan(IMPORT_PART);
    const docPuts = vi.spyOn(c.replica.dexie.table("_docs"), "bulkPut");
    expect(await importSnapshot(c.replica, snap)).toBe(true);
    const sizes = docPuts.mock.calls.map(([rows]) => (rows as unknown[]).length);
    // 250 documents and 200 creations: no request batch over IMPORT_PART, so none holds the page long.
    expect(Math.max(...sizes)).toBeLessThanOrEqual(IMPORT_PART);
    expect(sizes.reduce((x, y) => x + y, 0)).toBe(450);
    expect(sizes.length).toBeGreaterThanOrEqual(3);
    expect(await c.patients.orderBy("id").toArray()).toEqual(await a.patients.orderBy("id").toArray());
    expect(await c.vector([space.id])).toEqual(await a.vector([space.id]));
  }, 60_000);

  it("still stores nothing when a record in a later step breaks the rules (all checked before the first write)", async () => {
    const { a, space } = await source(300, 250);
    const c = await open();
    await c.join(await a.invite(space, "x:"));
    const snap = await readSnapshot(a.replica, space.id);
    // The bad row sits past the first step, which was already handed to IndexedDB when it is found.
    const bad = IMPORT_PART + 10;
    const commitsBefore = await c.replica.dexie.table("_commits").count();
    // A forged row: a reserved field after the row's own id.
    const forged = { id: "forged", $forged: 1 } as unknown as SnapshotDoc["row"];
    const docs = snap.docs.map((d, i) => (i === bad ? { ...d, row: forged } : d));
    await expect(importSnapshot(c.replica, { ...snap, docs })).rejects.toMatchObject({
      code: "ValidationError",
    });
    expect(await c.patients.count()).toBe(0);
    expect(await c.replica.dexie.table("_docs").count()).toBe(0);
    expect(await c.replica.dexie.table("_commits").count()).toBe(commitsBefore);
    expect(await c.vector([space.id])).toEqual({});
  }, 60_000);
});
