import { afterEach, describe, expect, it } from "vitest";
import type { Database, SpaceId } from "../../src/index.ts";
import { ValueStore } from "../../src/live/value-store.ts";
import { waitFor } from "../wait-for.ts";
import {
  closeAllDevices,
  countingTransport,
  disposeAllRelays,
  openDevice,
  patientCollections,
  RelayHarness,
  relayAcknowledged,
  relayTransport,
  storedSeqs,
  type Patient,
  type SeenAck,
} from "../relay-harness.ts";

type Db = Database<{ patients: Patient }>;
const device = (label: string) => openDevice<{ patients: Patient }>(label, patientCollections);
const count = (db: Db) => db.patients.live((c) => c.count());

afterEach(async () => {
  await closeAllDevices();
  await disposeAllRelays();
});

const range = (from: number, to: number) =>
  Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i);
const highest = (
  acks: readonly SeenAck[],
  space: string,
  device: string,
  connections: (c: number) => boolean,
) =>
  Math.max(
    0,
    ...acks
      .filter((a) => a.space === space && a.device === device && connections(a.connection))
      .map((a) => a.seq),
  );

describe("relay process crashes and data loss", () => {
  it("a relay killed with SIGKILL mid-upload keeps every commit it acknowledged, and the clients finish by themselves", async () => {
    const TOTAL = 300;
    const relay = await RelayHarness.start(["--quiet"]);
    const a = await device("a");
    const b = await device("b");
    const space = await a.db.createSpace({ name: "Crash ward" });
    await b.db.join(await a.db.invite(space, "https://app.example/"));
    // Commits of a few KiB each, so the upload spans several frames and acks. Queued together, the
    // inserts share IndexedDB transactions (the writer coalesces them): still one commit each.
    const notes = "Observation. ".repeat(200);
    await Promise.all(
      Array.from({ length: TOTAL }, (_, i) =>
        a.db.patients.insert(
          { name: `P${String(i).padStart(3, "0")}`, ward: "A", notes: `${i} ${notes}` },
          { space },
        ),
      ),
    );
    expect((await a.db.vector([space.id]))[space.id]?.[a.db.deviceId]).toBe(TOTAL);
    // Both reconnect by themselves after the crash, with a short backoff: the default (250 ms doubling
    // to 30 s) had them idle for seconds after the relay was back, which proves nothing more.
    const backoff = { baseMs: 50, maxMs: 1000 };
    b.online(relay.url, undefined, backoff);
    await waitFor(b.db.status, (s) => s.state === "synced", 30_000, "b connected");

    const t = countingTransport(relayTransport(relay.url));
    let killed: Promise<number | string> | null = null;
    let connectionsBeforeKill = Infinity;
    let firstAck = 0;
    const sub = t.acks.subscribe((acks) => {
      if (killed) return;
      const seq = highest(acks, space.id, a.db.deviceId, () => true);
      if (seq === 0) return;
      // The first ack of A's upload: kill the relay at once (the signal is sent synchronously here).
      firstAck = seq;
      connectionsBeforeKill = t.connections.length;
      killed = relay.killNow();
    });
    a.online(relay.url, t, backoff);
    await waitFor(a.db.status, () => killed !== null, 30_000, "a first ack");
    expect(await killed).toBe("SIGKILL");
    sub.unsubscribe();
    expect(firstAck).toBeLessThan(TOTAL);

    // Every ack the killed relay sent (including any still in flight when it died) promised durability.
    await waitFor(
      a.db.status,
      (s) => s.transports.every((x) => x.state !== "connected"),
      10_000,
      "a to see the relay gone",
    );
    const acked = highest(t.acks.get(), space.id, a.db.deviceId, (c) => c < connectionsBeforeKill);
    expect(acked).toBeGreaterThanOrEqual(firstAck);
    const afterCrash = storedSeqs(relay.sqliteFile, space.id, a.db.deviceId);
    expect(afterCrash.slice(0, acked)).toEqual(range(1, acked));

    // Restart on the same port and data directory; nothing nudges the clients.
    await relay.restart();
    await waitFor(count(b.db), (n) => n === TOTAL, 60_000, `b to receive all ${TOTAL}`);
    await waitFor(a.db.status, (s) => s.pendingCommits === 0, 60_000, "a's commits all acknowledged");
    await relayAcknowledged(a.db, space.id);
    expect(await b.db.vector([space.id])).toEqual(await a.db.vector([space.id]));
    expect(highest(t.acks.get(), space.id, a.db.deviceId, (c) => c >= connectionsBeforeKill)).toBe(TOTAL);
    await relay.stop("SIGTERM");
    expect(storedSeqs(relay.sqliteFile, space.id, a.db.deviceId)).toEqual(range(1, TOTAL));
  });

  it("wiping the relay's data directory loses nothing: the devices re-upload and a device joining later gets everything", async () => {
    const relay = await RelayHarness.start(["--quiet"]);
    const a = await device("a");
    const b = await device("b");
    const space = await a.db.createSpace({ name: "Wiped" });
    const link = await a.db.invite(space, "https://app.example/");
    await b.db.join(link);
    const ta = countingTransport(relayTransport(relay.url));
    const tb = countingTransport(relayTransport(relay.url));
    // A short reconnect backoff, as above: they come back by themselves after the restart either way.
    const backoff = { baseMs: 50, maxMs: 1000 };
    a.online(relay.url, ta, backoff);
    b.online(relay.url, tb, backoff);
    for (let i = 0; i < 10; i++) {
      await a.db.patients.insert({ name: `A${i}`, ward: "A", notes: `from a ${i}` }, { space });
      await b.db.patients.insert({ name: `B${i}`, ward: "B", notes: `from b ${i}` }, { space });
    }
    await waitFor(count(a.db), (n) => n === 20, 30_000, "a to hold 20");
    await waitFor(count(b.db), (n) => n === 20, 30_000, "b to hold 20");
    const [first] = await b.db.patients.where("name").equals("A0").toArray();
    await b.db.patients.update(first!.id, (p) => void (p.notes = "edited by b"));
    await waitFor(
      a.db.patients.live((q) => q.get(first!.id)),
      (p) => p?.notes === "edited by b",
      30_000,
      "a to see b's edit",
    );
    await relayAcknowledged(a.db, space.id);
    await relayAcknowledged(b.db, space.id);
    const vector = (await a.db.vector([space.id]))[space.id]!;
    expect(vector).toEqual((await b.db.vector([space.id]))[space.id]);

    await relay.stop("SIGTERM");
    relay.wipe();
    const before = { a: ta.connections.length, b: tb.connections.length };
    await relay.restart();
    expect(storedSeqs(relay.sqliteFile, space.id, a.db.deviceId)).toEqual([]);

    // A and B reconnect by themselves and refill the relay: wait for acks on the new connections
    // covering every device's head (either device may upload the other's commits).
    const refilled = () => {
      const acks = [
        ...ta.acks.get().filter((x) => x.connection >= before.a),
        ...tb.acks.get().filter((x) => x.connection >= before.b),
      ];
      return Object.entries(vector).every(([d, seq]) => highest(acks, space.id, d, () => true) >= seq);
    };
    const acksSeen = new ValueStore(0);
    const subs = [ta, tb].map((t) => t.acks.subscribe(() => acksSeen.set(acksSeen.get() + 1)));
    try {
      await waitFor(acksSeen, refilled, 60_000, "the relay refilled by a and b");
    } finally {
      for (const s of subs) s.unsubscribe();
    }
    expect(refilled()).toBe(true);

    // C joins while A and B are offline: everything it gets comes from the refilled store.
    a.offline();
    b.offline();
    const c = await device("c");
    await c.db.join(link);
    c.online(relay.url);
    const got = await waitFor(
      c.db.patients.live((q) => q.orderBy("name")),
      (r) => r.length === 20,
      30_000,
      "c to receive all 20",
    );
    expect(got.find((p) => p.name === "A0")?.notes).toBe("edited by b");
    expect((await c.db.vector([space.id]))[space.id]).toEqual(vector);
  });
});
