import { describe, expect, it } from "vitest";
import { asCounter, openDatabase, type Database } from "../index.ts";
import type { SpaceId } from "../types.ts";
import { decodeSnapshot, encodeSnapshot, type SnapshotContent } from "./snapshot-codec.ts";
import { snapshotWire, verifySnapshot } from "./snapshot-exchange.ts";
import { auditSnapshot } from "./snapshot-audit.ts";
import { importSnapshot, readSnapshot } from "./snapshot-io.ts";
import { openSnapshot, sealSnapshot } from "./snapshot-seal.ts";
import type { DocRow, SpaceRow } from "../replica/stored-rows.ts";
import { SpaceSealer } from "../sealing/sealer.ts";

type P = { name: string; ward: string; notes: string; visits: number; when?: Date };
type Db = Database<{ patients: P }>;
const collections = { patients: { indexes: "id, name, ward", text: ["notes"], counters: ["visits"] } };
let n = 0;

async function state(db: Db, space: SpaceId) {
  const rows = await db.patients.orderBy("id").toArray();
  const docs = (await db.replica.dexie.table<DocRow, string>("_docs").where("space").equals(space).toArray())
    .map((d) => ({ id: d.id, deleted: d.deleted, heads: [...d.heads].sort() }))
    .sort((a, b) => (a.id < b.id ? -1 : 1));
  const ids = (await db.replica.dexie
    .table<DocRow, string>("_docs")
    .where("space")
    .equals(space)
    .primaryKeys()) as string[];
  // Concurrent commits may sit in another order in each replica's log: compare histories as sets.
  const history: Record<string, unknown> = {};
  const at: Record<string, unknown> = {};
  for (const id of ids.sort()) {
    const h = (await db.patients.history(id)).sort((x, y) => (x.commit < y.commit ? -1 : 1));
    history[id] = h;
    at[id] = await Promise.all(
      h.filter((e) => e.op !== "delete").map((e) => db.patients.readAt(id, e.commit)),
    );
  }
  return {
    rows,
    docs,
    history,
    at,
    vector: await db.vector([space]),
    commits: (await db.exportCommits({}, { spaces: [space] })).map((c) => c.id).sort(),
  };
}

async function sealerOf(db: Db, space: SpaceId): Promise<SpaceSealer> {
  const row = (await db.replica.dexie.table<SpaceRow>("_spaces").get(space))!;
  return new SpaceSealer(db.replica.dexie, space, row.key);
}

/** A snapshot's plaintext as `db` publishes it. */
async function encoded(db: Db, snap: SnapshotContent): Promise<Uint8Array> {
  return encodeSnapshot(await snapshotWire(await sealerOf(db, snap.space), snap, db.deviceId));
}

describe("snapshots", () => {
  it("a device bootstrapped from a snapshot plus later commits equals one that replayed every commit", async () => {
    const open = () => openDatabase<{ patients: P }>({ name: `snap-${n++}`, collections });
    const [a, b, fromSnapshot, replayed] = await Promise.all([open(), open(), open(), open()]);
    const space = await a.createSpace({ name: "Clinic" });
    const link = await a.invite(space, "x:");
    for (const db of [b, fromSnapshot, replayed]) await db.join(link);
    // History before the snapshot: inserts (lazy and eager), edits on two devices, text, counters, deletes.
    const ids: string[] = [];
    for (let i = 0; i < 30; i++)
      ids.push(await a.patients.insert({ name: `P${i}`, ward: "A", notes: `n${i}`, visits: 0 }, { space }));
    ids.push(
      await a.patients.insert(
        { name: "Dated", ward: "B", notes: "", visits: 0, when: new Date(86_400_000) },
        { space },
      ),
    );
    // Sealed, as a transport carries them: a snapshot holds the signed commits of every device.
    await b.importBundle(await a.exportBundle({ space }));
    await b.patients.update(ids[0]!, (p) => void (p.notes = "n0 edited by b"));
    await a.patients.update(ids[0]!, (p) => void (p.notes = "a says n0"));
    await a.patients.update(ids[1]!, (p) => asCounter(p.visits).increment(3));
    await b.patients.delete(ids[2]!);
    await a.patients.update(ids[2]!, (p) => void (p.ward = "C")); // concurrent with the delete
    await a.importBundle(await b.exportBundle({ space, since: await a.vector([space.id]) }));
    const snap = await readSnapshot(a.replica, space.id);
    // Through the codec and the seal, as it travels.
    const key = (await a.replica.dexie.table("_spaces").get(space.id)).key as Uint8Array;
    const sealed = await sealSnapshot(key, space.id, snap.vector, await encoded(a, snap));
    const wire = decodeSnapshot(await openSnapshot(key, space.id, snap.vector, sealed), space.id);
    const { content: decoded, opened } = await verifySnapshot(
      await sealerOf(fromSnapshot, space.id),
      space.id,
      wire,
      snap.vector,
    );
    // An honest snapshot passes the joiner's audit of its records against its log.
    expect(await auditSnapshot(decoded)).toBeNull();
    expect(
      await auditSnapshot({ ...decoded, docs: decoded.docs.map((d) => ({ ...d, deleted: !d.deleted })) }),
    ).toMatch(/deleted flag/);
    expect(await importSnapshot(fromSnapshot.replica, decoded)).toBe(true);
    // As the sync session does: the snapshot's sealed commits are kept, to forward them as signed.
    await (await sealerOf(fromSnapshot, space.id)).keep(opened, "snapshot");
    expect(await importSnapshot(fromSnapshot.replica, decoded)).toBe(false); // only onto an empty space
    // History after the snapshot.
    await a.patients.update(ids[3]!, (p) => void (p.name = "After"));
    await b.patients.update(ids[0]!, (p) => void (p.notes = `${p.notes}!`));
    await a.patients.delete(ids[4]!);
    // Carried as files (sealed and signed, as every transport carries them).
    const carry = async (from: Db, to: Db) =>
      to.importBundle(await from.exportBundle({ space, since: await to.vector([space.id]) }));
    for (const to of [fromSnapshot, replayed]) {
      await carry(a, to);
      await carry(b, to);
    }
    await carry(b, a);
    const expected = await state(replayed, space.id);
    expect(await state(fromSnapshot, space.id)).toEqual(expected);
    expect(await state(a, space.id)).toEqual(expected);
    expect(expected.rows.find((r) => r.id === ids[2])).toBeUndefined();
    expect(expected.rows.find((r) => r.id === ids[4])).toBeUndefined();
    // A device bootstrapped from a snapshot edits on as a full node.
    await fromSnapshot.patients.update(ids[5]!, (p) => void (p.notes = "from the snapshot device"));
    await carry(fromSnapshot, replayed);
    expect((await replayed.patients.get(ids[5]!))?.notes).toBe("from the snapshot device");
  }, 30_000);

  it("refuses a snapshot that skips commits or whose seal was altered, importing nothing", async () => {
    const a = await openDatabase<{ patients: P }>({ name: `snap-${n++}`, collections });
    const c = await openDatabase<{ patients: P }>({ name: `snap-${n++}`, collections });
    const space = await a.createSpace({ name: "S" });
    await c.join(await a.invite(space, "x:"));
    for (let i = 0; i < 3; i++)
      await a.patients.insert({ name: `P${i}`, ward: "A", notes: "", visits: 0 }, { space });
    const snap = await readSnapshot(a.replica, space.id);
    await expect(
      importSnapshot(c.replica, { ...snap, commits: snap.commits.slice(1) }),
    ).rejects.toMatchObject({ code: "ValidationError" });
    const key = (await a.replica.dexie.table("_spaces").get(space.id)).key as Uint8Array;
    const sealed = await sealSnapshot(key, space.id, snap.vector, await encoded(a, snap));
    sealed[40] = sealed[40]! ^ 1;
    await expect(openSnapshot(key, space.id, snap.vector, sealed)).rejects.toMatchObject({
      code: "DecryptError",
    });
    await expect(
      openSnapshot(key, space.id, {}, await sealSnapshot(key, space.id, snap.vector, await encoded(a, snap))),
    ).rejects.toMatchObject({ code: "DecryptError" });
    expect(await c.patients.count()).toBe(0);
    expect(await c.vector([space.id])).toEqual({});
  });
});
