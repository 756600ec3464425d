import { afterEach, describe, expect, it } from "vitest";
import { openDatabase, type Change, type Database } from "../../src/index.ts";
import {
  closeAllDevices,
  disposeAllRelays,
  openDevice,
  patientCollections,
  RelayHarness,
  relayTransport,
  type Patient,
} from "../relay-harness.ts";

const device = (label: string) => openDevice<{ patients: Patient }>(label, patientCollections);

afterEach(async () => {
  await closeAllDevices();
  await disposeAllRelays();
});

/** Takes `count` changes from a feed iterator, leaving it open. */
async function take(it: AsyncIterator<Change>, count: number): Promise<Change[]> {
  const out: Change[] = [];
  while (out.length < count) {
    const r = await it.next();
    if (r.done) throw new Error("the feed ended");
    out.push(r.value);
  }
  return out;
}

describe("the change feed with commits from the relay process", () => {
  it("lists commits received from the relay as they arrive, and resumes after a reload with the rest, those received meanwhile included", async () => {
    const relay = await RelayHarness.start(["--quiet"]);
    const a = await device("a");
    const space = await a.db.createSpace({ name: "Feed" });
    const link = await a.db.invite(space);
    const name = `feed-relay-b-${process.pid}-${Date.now()}`;
    let b: Database<{ patients: Patient }> = await openDatabase<{ patients: Patient }>({
      name,
      collections: patientCollections,
    });
    await b.join(link);
    a.online(relay.url);
    let stopB = b.sync({ transports: [relayTransport(relay.url)] });

    const feed = b.changes({ collections: ["patients"] })[Symbol.asyncIterator]();
    const ids: string[] = [];
    for (const n of ["Ada", "Bea", "Cy"])
      ids.push(await a.db.patients.insert({ name: n, ward: "A", notes: "" }, { space }));
    // Arriving while the loop waits: delivered, each once, as remote commits of a.
    const first = await take(feed, 3);
    await feed.return!();
    expect(first.map((c) => c.records[0]!.id)).toEqual(ids);
    expect(first.every((c) => !c.local && c.device === a.db.deviceId)).toBe(true);
    const cursor = first[1]!.cursor;

    // b goes away; a writes on; b comes back and syncs; resuming from the second change's cursor gives
    // the third and everything received since, nothing twice.
    stopB();
    await b.close();
    await a.db.patients.update(ids[0]!, (p) => void (p.ward = "B"));
    ids.push(await a.db.patients.insert({ name: "Dee", ward: "A", notes: "" }, { space }));
    b = await openDatabase<{ patients: Patient }>({ name, collections: patientCollections });
    stopB = b.sync({ transports: [relayTransport(relay.url)] });
    const rest: Change[] = [];
    const stop = new AbortController();
    for await (const c of b.changes({ since: cursor, signal: stop.signal })) {
      rest.push(c);
      if (rest.length === 3) stop.abort();
    }
    expect(rest.map((c) => [c.seq, c.records[0]!.op])).toEqual([
      [3, "insert"],
      [4, "update"],
      [5, "insert"],
    ]);
    expect(rest[1]!.records[0]).toMatchObject({ id: ids[0], paths: ["ward"] });
    const all = [...first.slice(0, 2), ...rest].map((c) => c.commit);
    expect(new Set(all).size).toBe(5);
    stopB();
    await b.close();
  });
});
