// The way out for a device that holds a commit too large to seal (stored by an older version, whose size
// check counted UTF-16 units): it blocks every later upload of the device in its space until
// `db.rollBackUnsyncable()` removes it, hands back what the user typed, and sync goes on.
import * as A from "@automerge/automerge";
import { afterEach, describe, expect, it } from "vitest";
import type { Database, SpaceId } from "../../src/index.ts";
import type { PreparedCommit, PreparedEntry } from "../../src/replica/prepared.ts";
import { writeLocalBatch } from "../../src/replica/write-local-batch.ts";
import type { RecordId } from "../../src/types.ts";
import { waitFor } from "../wait-for.ts";
import {
  closeAllDevices,
  disposeAllRelays,
  openDevice,
  patientCollections,
  RelayHarness,
  relayAcknowledged,
  storedSeqs,
  type Patient,
} from "../relay-harness.ts";

type Db = Database<{ patients: Patient }>;
const device = (label: string) => openDevice<{ patients: Patient }>(label, patientCollections);

afterEach(async () => {
  await closeAllDevices();
  await disposeAllRelays();
});

/**
 * Writes an edit of one record straight through the replica's writer, as a version without the sealed
 * size check did: the writer takes the next sequence number and stores it whatever its size.
 */
async function writeAsOldVersion(
  db: Db,
  space: SpaceId,
  id: RecordId,
  edit: (d: Record<string, unknown>) => void,
): Promise<void> {
  const replica = db.replica;
  const loaded = (await replica.loadForEdit(id))!;
  const doc = A.change(A.clone(loaded.doc, { actor: replica.actor }), (d) =>
    edit(d as Record<string, unknown>),
  );
  const entry: PreparedEntry = {
    record: id,
    collection: "patients",
    op: "update",
    changes: A.getChanges(loaded.doc, doc),
    paths: ["notes", "name"],
    space,
    baseHeads: loaded.heads,
    doc,
    version: 0,
  };
  const commit: PreparedCommit = { space, at: Date.now(), entries: [entry] };
  await writeLocalBatch(replica.dexie, replica.device, replica.actor, [commit]);
  replica.cache.clear();
}

describe("a commit too large to sync, stored by an older version", () => {
  it("is rolled back with its record's last value handed to the app, and sync goes on to another device", async () => {
    const relay = await RelayHarness.start(["--quiet"]);
    const [a, b] = await Promise.all([device("a"), device("b")]);
    const space = await a.db.createSpace({ name: "Ward" });
    await b.db.join(await a.db.invite(space, "https://app.example/"));
    a.online(relay.url);
    b.online(relay.url);

    const ada = await a.db.patients.insert({ name: "Ada", ward: "A", notes: "" }, { space });
    await relayAcknowledged(a.db, space.id);
    a.offline();

    // Seq 2: a 400,000-character CJK note (1.2 MB of UTF-8) the old check let through.
    const note = "漢字".repeat(200_000);
    await writeAsOldVersion(a.db, space.id, ada, (d) => A.updateText(d, ["notes"], note));
    // Seq 3: another record, untouched by seq 2: kept. Seq 4: an edit built on seq 2: removed with it.
    const bob = await a.db.patients.insert({ name: "Bob", ward: "B", notes: "" }, { space });
    await a.db.patients.update(ada, (p) => void (p.name = "Ada Lovelace"));
    expect((await a.db.vector([space.id]))[space.id]![a.db.deviceId]).toBe(4);

    // Stuck: the device cannot seal seq 2, so the relay never gets seq 2, 3 or 4, and says why.
    a.online(relay.url);
    const stuck = await waitFor(
      a.db.status,
      (s) => s.lastError?.code === "CommitTooLarge",
      30_000,
      "a to report the unsyncable commit",
    );
    expect(stuck.lastError!.message).toMatch(/rollBackUnsyncable/);
    expect(storedSeqs(relay.sqliteFile, space.id, a.db.deviceId)).toEqual([1]);

    const reports = await a.db.rollBackUnsyncable();
    expect(reports).toHaveLength(1);
    const [r] = reports;
    const id = (seq: number) => `${space.id}.${a.db.deviceId}.${seq}`;
    expect(r!.space).toBe(space.id);
    expect(r!.removed).toEqual([id(2), id(4)]);
    expect(r!.renumbered).toEqual([{ from: id(3), to: id(2) }]);
    expect(r!.records).toHaveLength(1);
    const rec = r!.records[0]!;
    expect(rec).toMatchObject({ collection: "patients", id: ada, space: space.id });
    // Nothing the user typed is lost: the last value comes back to the app.
    expect(rec.before).toMatchObject({ name: "Ada Lovelace", notes: note });
    expect(rec.after).toEqual({ id: ada, name: "Ada", ward: "A", notes: "" });
    expect(await a.db.patients.get(ada)).toEqual(rec.after);
    expect(await a.db.patients.get(bob)).toMatchObject({ name: "Bob" });
    expect((await a.db.vector([space.id]))[space.id]![a.db.deviceId]).toBe(2);
    expect(await a.db.rollBackUnsyncable()).toEqual([]);

    // The app saves the note again in parts, each small enough to sync, and the new name.
    // (Each part within the content limits; the writer itself cuts any part past MAX_OPS_PER_CHANGE,
    // 512 operations, into several Automerge changes of its commit.)
    const parts = 25;
    const size = note.length / parts;
    for (let i = 0; i < parts; i++)
      await a.db.patients.update(ada, (p) => void (p.notes += note.slice(i * size, (i + 1) * size)));
    await a.db.patients.update(ada, (p) => void (p.name = rec.before!.name as string));

    // Nothing stuck: the relay holds every commit of a, and b gets all of it.
    await relayAcknowledged(a.db, space.id, 60_000);
    await waitFor(a.db.status, (s) => s.pendingCommits === 0, 30_000, "a to have no pending commits");
    const held = (await a.db.vector([space.id]))[space.id]![a.db.deviceId]!;
    expect(held).toBe(2 + parts + 1);
    expect(storedSeqs(relay.sqliteFile, space.id, a.db.deviceId)).toEqual(
      Array.from({ length: held }, (_, i) => i + 1),
    );
    const onB = await waitFor(
      b.db.patients.live((c) => c.orderBy("name")),
      (rows) =>
        rows.length === 2 && rows.some((p) => p.name === "Ada Lovelace" && p.notes.length === note.length),
      60_000,
      "b to receive the note and Bob",
    );
    expect(onB.map((p) => p.name)).toEqual(["Ada Lovelace", "Bob"]);
    expect(onB[0]!.notes === note).toBe(true);
  });
});
