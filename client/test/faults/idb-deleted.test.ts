// Crash test (issue 6): a client whose IndexedDB is deleted (the browser cleared site data, a disk was
// replaced) re-joins with its invitation link and recovers everything: from the relay (every row, the
// same vector entries for every device's commits, its own old ones included), and, when the relay has
// lost its data as well, from a peer that still holds the commits and re-uploads them.
import { afterEach, describe, expect, it } from "vitest";
import { openDatabase, type Database } from "../../src/index.ts";
import { memoryTransport } from "../../src/transports/memory-transport.ts";
import { inProcessRelay, type InProcessRelay } from "../../../sync-server/src/testing/in-process-relay.ts";
import { waitFor } from "../wait-for.ts";

type P = { name: string; ward: string; notes: string; visits: number };
type Db = Database<{ patients: P }>;
const collections = { patients: { indexes: "id, name, ward", text: ["notes"], counters: ["visits"] } };
let n = 0;
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function openNamed(name: string): Promise<Db> {
  const db = await openDatabase<{ patients: P }>({ name, collections, persist: false });
  cleanups.push(() => db.close().catch(() => undefined));
  return db;
}

/** Deletes a whole IndexedDB database (what "clear site data" does), once its connections are closed. */
function deleteIndexedDb(name: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = indexedDB.deleteDatabase(name);
    const timer = setTimeout(
      () => reject(new Error(`deleteDatabase(${name}) blocked: a connection is still open`)),
      10_000,
    );
    req.onsuccess = () => (clearTimeout(timer), resolve());
    req.onerror = () => (clearTimeout(timer), reject(req.error));
  });
}

const backoff = { baseMs: 2, maxMs: 50 };
function online(db: Db, relay: () => InProcessRelay): () => void {
  const stop = db.sync({
    transports: [memoryTransport((s, t, e, c) => relay().accept(s, t, e, c))],
    backoff,
  });
  cleanups.push(stop);
  return stop;
}

async function stateOf(db: Db, space: string) {
  return {
    rows: await db.patients.orderBy("id").toArray(),
    vector: (await db.vector([space as never]))[space] ?? {},
    heads: (await db.replica.dexie.table("_docs").toArray())
      .filter((d: { space: string }) => d.space === space)
      .map((d: { id: string; heads: string[] }) => `${d.id}:${[...d.heads].sort().join(",")}`)
      .sort(),
  };
}

describe("a client whose IndexedDB was deleted", () => {
  it("re-joins and recovers everything from the relay, then from a peer when the relay lost its data too", async () => {
    let relay = inProcessRelay({ limits: { messagesPerSecond: 100_000, messageBurst: 100_000 } });
    cleanups.push(() => relay.close());
    const a = await openNamed(`idb-a-${process.pid}-${n++}`);
    const bName = `idb-b-${process.pid}-${n++}`;
    let b = await openNamed(bName);
    const space = await a.createSpace({ name: "Recovery" });
    const link = await a.invite(space, "https://app.example/");
    await b.join(link);
    let stopA = online(a, () => relay);
    let stopB = online(b, () => relay);
    // Both devices write: inserts, edits of each other's records, text, counters, a delete.
    const ids: string[] = [];
    for (let i = 0; i < 8; i++)
      ids.push(await a.patients.insert({ name: `A${i}`, ward: "A", notes: `a ${i}`, visits: 0 }, { space }));
    for (let i = 0; i < 8; i++)
      ids.push(await b.patients.insert({ name: `B${i}`, ward: "B", notes: `b ${i}`, visits: 0 }, { space }));
    await waitFor(
      a.patients.live((c) => c.count()),
      (x) => x === 16,
      20_000,
      "a to hold 16",
    );
    await waitFor(
      b.patients.live((c) => c.count()),
      (x) => x === 16,
      20_000,
      "b to hold 16",
    );
    await b.patients.update(ids[0]!, (p) => void (p.notes = `${p.notes} edited by b`));
    await a.patients.update(ids[9]!, (p) => void (p.ward = "C"));
    await b.patients.delete(ids[3]!);
    await b.transact(async (tx) => {
      await tx.patients.update(ids[1]!, (p) => void (p.name = "A1 renamed"));
      await tx.patients.update(ids[10]!, (p) => void (p.name = "B2 renamed"));
    });
    const oldB = b.deviceId;
    await waitFor(b.status, (s) => s.pendingCommits === 0, 20_000, "b's commits acknowledged");
    await waitFor(a.status, (s) => s.pendingCommits === 0, 20_000, "a's commits acknowledged");
    const bHas = (await b.vector([space.id]))[space.id]![oldB]!;
    expect(bHas).toBe(11);
    await waitFor(
      a.live(() => a.vector([space.id])),
      (v) => v[space.id]?.[oldB] === bHas,
      20_000,
      "a to hold all of b's commits",
    );
    const want = await stateOf(a, space.id);
    expect(want.rows.length).toBe(15);
    expect(Object.keys(want.vector).sort()).toEqual([a.deviceId, oldB].sort());

    // B's IndexedDB is deleted. A fresh database under the same name, joined again with the link.
    stopB();
    await b.close();
    await deleteIndexedDb(bName);
    b = await openNamed(bName);
    expect(await b.patients.count()).toBe(0);
    expect(b.deviceId).not.toBe(oldB);
    await b.join(link);
    stopB = online(b, () => relay);
    await waitFor(
      b.patients.live((c) => c.count()),
      (x) => x === 15,
      20_000,
      "b to recover 15 rows from the relay",
    );
    await waitFor(
      b.live(() => b.vector([space.id])),
      (v) => JSON.stringify(v[space.id]) === JSON.stringify(want.vector),
      20_000,
      "b's vector to match",
    );
    expect(await stateOf(b, space.id)).toEqual(want);
    // The recovered replica works: a new edit (under its new device id) reaches A.
    await b.patients.update(ids[2]!, (p) => void (p.notes = "after recovery"));
    await waitFor(
      a.patients.live((c) => c.get(ids[2]!)),
      (p) => p?.notes === "after recovery",
      20_000,
      "a to see b's new edit",
    );

    // Now the relay loses everything too, A writes offline meanwhile, and B's IndexedDB is deleted again.
    // Only A holds the data: it re-uploads every device's commits, and B recovers them through the relay.
    stopB();
    await b.close();
    await deleteIndexedDb(bName);
    stopA(); // A is offline meanwhile, so B meets the new relay empty
    await relay.close();
    relay = inProcessRelay({ limits: { messagesPerSecond: 100_000, messageBurst: 100_000 } });
    cleanups.push(() => relay.close());
    for (let i = 0; i < 3; i++)
      await a.patients.insert({ name: `A late ${i}`, ward: "A", notes: "", visits: 0 }, { space });
    b = await openNamed(bName);
    await b.join(link);
    online(b, () => relay); // B first, against the empty relay: nothing to get yet
    await waitFor(b.status, (s) => s.state === "synced", 20_000, "b synced with the empty relay");
    expect(await b.patients.count()).toBe(0);
    stopA = online(a, () => relay); // A comes back online and re-uploads what the relay lost
    await waitFor(
      b.patients.live((c) => c.count()),
      (x) => x === 18,
      20_000,
      "b to recover 18 rows re-uploaded by a",
    );
    const again = await stateOf(a, space.id);
    await waitFor(
      b.live(() => b.vector([space.id])),
      (v) => JSON.stringify(v[space.id]) === JSON.stringify(again.vector),
      20_000,
      "b's vector to match a's",
    );
    expect(await stateOf(b, space.id)).toEqual(again);
    // The new relay holds every device's commits, the deleted devices' included, uploaded by A.
    const stored = await relay.store.vector(space.id);
    expect(Object.fromEntries(stored)).toEqual(again.vector);
    expect(stored.get(oldB)).toBe(bHas);
  });
});
