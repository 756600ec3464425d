import { afterEach, describe, expect, it } from "vitest";
import { openDatabase, type Database } from "../../src/index.ts";
import { memoryTransport } from "../../src/transports/memory-transport.ts";
import { inProcessRelay } from "../../../sync-server/src/testing/in-process-relay.ts";
import { waitFor } from "../wait-for.ts";

type P = { name: string; ward: string; notes: string };
const collections = { patients: { indexes: "id, name, ward", text: ["notes"] } };
let n = 0;
const open = () => openDatabase<{ patients: P }>({ name: `sync-mem-${n++}`, collections });
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function device(relay: ReturnType<typeof inProcessRelay>) {
  const db = await open();
  let stop: (() => void) | null = null;
  const d = {
    db,
    online: () => {
      stop = db.sync({ transports: [memoryTransport(relay.accept)] });
    },
    offline: () => {
      stop?.();
      stop = null;
    },
  };
  cleanups.push(async () => {
    d.offline();
    await db.close();
  });
  return d;
}

const rows = (db: Database<{ patients: P }>) => db.patients.live((c) => c.orderBy("name"));

describe("sync through an in-process relay", () => {
  it("converges both ways, including concurrent text edits", async () => {
    const relay = inProcessRelay();
    const a = await device(relay);
    const b = await device(relay);
    const space = await a.db.createSpace({ name: "North Clinic" });
    await b.db.join(await a.db.invite(space, "https://app.example/"));
    a.online();
    b.online();
    const id = await a.db.patients.insert({ name: "Ada", ward: "A", notes: "Note." }, { space });
    await waitFor(rows(b.db), (r) => r.length === 1, 20_000, "b to receive Ada");
    await b.db.patients.insert({ name: "Bob", ward: "B", notes: "" }, { space });
    await waitFor(rows(a.db), (r) => r.length === 2, 20_000, "a to receive Bob");
    a.offline();
    b.offline();
    await a.db.patients.update(id, (p) => void (p.notes = "Start. Note."));
    await b.db.patients.update(id, (p) => void (p.notes = "Note. End."));
    a.online();
    b.online();
    const want = "Start. Note. End.";
    await waitFor(rows(a.db), (r) => r.find((p) => p.id === id)?.notes === want, 20_000, "a to merge");
    await waitFor(rows(b.db), (r) => r.find((p) => p.id === id)?.notes === want, 20_000, "b to merge");
    expect(await a.db.vector([space.id])).toEqual(await b.db.vector([space.id]));
    const s = await waitFor(
      a.db.status,
      (st) => st.pendingCommits === 0 && st.state === "synced",
      20_000,
      "a synced",
    );
    expect(s.transports.every((t) => t.state === "connected")).toBe(true);
  });

  it("devices that are never online together converge through the relay", async () => {
    const relay = inProcessRelay();
    const a = await device(relay);
    const b = await device(relay);
    const space = await a.db.createSpace({ name: "Field" });
    await b.db.join(await a.db.invite(space, "https://app.example/"));
    a.online();
    for (let i = 0; i < 30; i++)
      await a.db.patients.insert({ name: `P${String(i).padStart(2, "0")}`, ward: "A", notes: "" }, { space });
    await waitFor(a.db.status, (st) => st.pendingCommits === 0, 20_000, "a's commits acknowledged");
    const last = (await a.db.exportCommits({}, { spaces: [space.id] })).at(-1)!;
    expect(await a.db.durability(last.id)).toEqual({ local: true, relay: true, devices: [] });
    a.offline();
    b.online();
    await waitFor(rows(b.db), (r) => r.length === 30, 20_000, "b to receive all 30");
    expect(await b.db.vector([space.id])).toEqual(await a.db.vector([space.id]));
  });

  it("a wiped relay is refilled by the devices, and nothing is lost", async () => {
    let relay = inProcessRelay();
    const transportFor = () => memoryTransport((s, t, e, c) => relay.accept(s, t, e, c));
    const a = await open();
    const b = await open();
    cleanups.push(
      () => a.close(),
      () => b.close(),
    );
    const space = await a.createSpace({ name: "S" });
    await b.join(await a.invite(space, "x:"));
    const stopA = a.sync({ transports: [transportFor()] });
    for (let i = 0; i < 5; i++) await a.patients.insert({ name: `A${i}`, ward: "A", notes: "" }, { space });
    await waitFor(a.status, (st) => st.pendingCommits === 0, 20_000, "acks");
    stopA();
    await relay.close();
    relay = inProcessRelay(); // empty: the relay's data is gone
    const stopB = b.sync({ transports: [transportFor()] });
    const stopA2 = a.sync({ transports: [transportFor()] });
    await waitFor(rows(b), (r) => r.length === 5, 20_000, "b to get a's commits from the refilled relay");
    cleanups.push(stopA2, stopB);
    // The relay holds a's five commits again although a only re-uploaded them.
    await waitFor(a.status, (st) => st.pendingCommits === 0, 20_000, "a acknowledged by the new relay");
    expect((await relay.store.vector(space.id)).get(a.deviceId)).toBe(5);
  });
});
