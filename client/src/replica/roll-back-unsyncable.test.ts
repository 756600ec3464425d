import "fake-indexeddb/auto";
import * as A from "@automerge/automerge";
import { describe, expect, it } from "vitest";
import { openDatabase, type Database } from "../database.ts";
import { uuidv7 } from "../ids.ts";
import type { RecordId, SpaceId } from "../types.ts";
import { creationOf } from "./creation.ts";
import type { PreparedEntry } from "./prepared.ts";
import { writeLocalBatch } from "./write-local-batch.ts";

type P = { name: string; ward: string; notes: string };
type Db = Database<{ patients: P }>;
const collections = { patients: { indexes: "id, name", text: ["notes"] } };
let n = 0;
const open = (): Promise<Db> => openDatabase<{ patients: P }>({ name: `rollback-${n++}`, collections });

/** Writes one commit straight through the writer, as a version without the sealed size check did. */
async function oldVersionWrite(db: Db, entry: Omit<PreparedEntry, "version" | "collection">): Promise<void> {
  const r = db.replica;
  await writeLocalBatch(r.dexie, r.device, r.actor, [
    { space: entry.space, at: Date.now(), entries: [{ ...entry, collection: "patients", version: 0 }] },
  ]);
  r.cache.clear();
}

/** An update of one record made with Automerge directly (no size check). */
async function oldVersionUpdate(db: Db, space: SpaceId, id: RecordId, fn: (d: P) => void): Promise<void> {
  const loaded = (await db.replica.loadForEdit(id))!;
  const doc = A.change(A.clone(loaded.doc, { actor: db.replica.actor }), (d) => fn(d as P));
  await oldVersionWrite(db, {
    record: id,
    op: "update",
    changes: A.getChanges(loaded.doc, doc),
    paths: ["notes"],
    space,
    baseHeads: loaded.heads,
    doc,
  });
}

/** Carries what `to` lacks of `space` from `from`, sealed, as a file: proves every commit seals. */
async function carry(from: Db, to: Db, space: SpaceId): Promise<void> {
  const bytes = await from.exportBundle({ space, since: await to.vector([space]) });
  await to.importBundle(bytes);
}

describe("rollBackUnsyncable", () => {
  it("removes the unsealable commits and those built on them, keeps the rest renumbered, and keeps other devices' changes", async () => {
    const [a, b] = [await open(), await open()];
    const space = (await a.createSpace({ name: "Ward" })).id;
    await b.join(await a.invite(space, "https://app.example/"));

    const ada = await a.patients.insert({ name: "Ada", ward: "A", notes: "ok" }, { space }); // seq 1
    await carry(a, b, space);
    await b.patients.update(ada, (p) => void (p.name = "Ada B")); // b's edit before a's stuck one
    await carry(b, a, space);

    const huge = "漢".repeat(400_000);
    // seq 2: stuck. (A splice: diffing 400,000 characters against "ok" with updateText takes minutes.)
    await oldVersionUpdate(a, space, ada, (d) => void A.splice(d, ["notes"], 2, 0, huge));
    await b.patients.update(ada, (p) => void (p.ward = "B")); // b's concurrent edit, after it
    await carry(b, a, space);
    const bob = await a.patients.insert({ name: "Bob", ward: "A", notes: "" }, { space }); // seq 3: kept
    const zed = uuidv7() as RecordId; // seq 4: an insert too large, as a creation: removed, record gone
    await oldVersionWrite(a, {
      record: zed,
      op: "insert",
      changes: [],
      create: creationOf({ name: "Zed", ward: "Z", notes: huge }, new Set(["notes"]), new Set())!,
      paths: ["name", "notes", "ward"],
      space,
      baseHeads: [],
      doc: null,
    });
    await a.patients.update(bob, (p) => void (p.ward = "C")); // seq 5: kept
    await a.patients.update(zed, (p) => void (p.name = "Zed 2")); // seq 6: built on seq 4, removed
    await expect(a.exportBundle({ space })).rejects.toMatchObject({ code: "CommitTooLarge" });

    const [report, ...more] = await a.rollBackUnsyncable(space);
    expect(more).toEqual([]);
    const id = (seq: number) => `${space}.${a.deviceId}.${seq}`;
    expect(report!.removed).toEqual([id(2), id(4), id(6)]);
    expect(report!.renumbered).toEqual([
      { from: id(3), to: id(2) },
      { from: id(5), to: id(3) },
    ]);
    const records = new Map(report!.records.map((r) => [r.id, r]));
    expect(records.size).toBe(2);
    expect(records.get(ada)!.before).toEqual({ id: ada, name: "Ada B", ward: "B", notes: `ok${huge}` });
    expect(records.get(ada)!.after).toEqual({ id: ada, name: "Ada B", ward: "B", notes: "ok" });
    expect(records.get(zed)!.before).toEqual({ id: zed, name: "Zed 2", ward: "Z", notes: huge });
    expect(records.get(zed)!.after).toBeUndefined();
    expect(await a.patients.get(zed)).toBeUndefined();
    expect(await a.replica.dexie.table("_docs").get(zed)).toBeUndefined();
    expect((await a.vector([space]))[space]![a.deviceId]).toBe(3);
    expect((await a.patients.history(bob)).map((h) => h.commit)).toEqual([id(2), id(3)]);

    // Nothing stuck: everything seals, and the other device ends with the same rows.
    await carry(a, b, space);
    const rows = (db: Db) => db.patients.orderBy("name").toArray();
    expect(await rows(b)).toEqual(await rows(a));
    expect((await rows(a)).map((p) => [p.name, p.ward])).toEqual([
      ["Ada B", "B"],
      ["Bob", "C"],
    ]);
    // The edit goes on as usual, also on the rebuilt record, and syncs.
    await a.patients.update(ada, (p) => void (p.notes += " and more"));
    await carry(a, b, space);
    expect((await b.patients.get(ada))!.notes).toBe("ok and more");
    expect(await a.rollBackUnsyncable()).toEqual([]);
    await Promise.all([a.close(), b.close()]);
  }, 60_000);
});
