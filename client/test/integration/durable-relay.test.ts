import { afterEach, describe, expect, it } from "vitest";
import { DurabilityPending, NotSupported, openDatabase, type CommitId } from "../../src/index.ts";
import { waitFor } from "../wait-for.ts";
import {
  closeAllDevices,
  disposeAllRelays,
  openDevice,
  patientCollections,
  RelayHarness,
  type Patient,
} from "../relay-harness.ts";

const device = (label: string) => openDevice<{ patients: Patient }>(label, patientCollections);

afterEach(async () => {
  await closeAllDevices();
  await disposeAllRelays();
});

/** A promise's outcome so far, without waiting for it. */
function track<T>(p: Promise<T>): { settled: () => boolean; value: Promise<T> } {
  let settled = false;
  p.then(
    () => (settled = true),
    () => (settled = true),
  );
  return { settled: () => settled, value: p };
}

describe("db.transact(fn, { durable }) against the relay process", () => {
  it("waits while the relay is down, keeps the commit local, and resolves once the restarted relay acknowledges it", async () => {
    const relay = await RelayHarness.start(["--quiet"]);
    const a = await device("a");
    const space = await a.db.createSpace({ name: "Durable" });
    a.online(relay.url);

    // Relay up: resolves, and by then the relay has acknowledged the commit.
    const first = await a.db.transact(
      (tx) => tx.patients.insert({ name: "First", ward: "A", notes: "" }, { space }),
      { durable: "relay" },
    );
    expect(first).toMatch(/-/);
    const firstCommit = `${space.id}.${a.db.deviceId}.1` as CommitId;
    expect(await a.db.durability(firstCommit)).toEqual({ local: true, relay: true, devices: [] });

    // Relay down: the commit is saved locally at once; the wait does not end.
    await relay.stop("SIGTERM");
    await waitFor(
      a.db.status,
      (st) => st.transports.length > 0 && st.transports.every((t) => t.state !== "connected"),
      10_000,
      "a to see the relay gone",
    );
    const waiting = track(
      a.db.transact((tx) => tx.patients.insert({ name: "Second", ward: "A", notes: "" }, { space }), {
        durable: "relay",
      }),
    );
    const second = `${space.id}.${a.db.deviceId}.2` as CommitId;
    await waitFor(
      a.db.live(() => a.db.durability(second)),
      (d) => d.local,
      10_000,
      "the second commit saved locally",
    );
    // The status counted it as waiting for the relay, and the client is (still) trying to reconnect.
    await waitFor(a.db.status, (st) => st.pendingCommits === 1, 10_000, "one commit pending");
    await waitFor(
      a.db.status,
      (st) => st.state === "offline" || st.state === "connecting",
      10_000,
      "a offline or reconnecting",
    );
    expect(await a.db.durability(second)).toEqual({ local: true, relay: false, devices: [] });
    expect(waiting.settled()).toBe(false);

    // A timeout and an abort end their own waits with DurabilityPending; the commits stay.
    const timedOut = await a.db
      .transact((tx) => tx.patients.insert({ name: "Third", ward: "A", notes: "" }, { space }), {
        durable: "relay",
        timeout: 50,
      })
      .catch((e: unknown) => e);
    expect(timedOut).toBeInstanceOf(DurabilityPending);
    expect(timedOut).toMatchObject({ reason: "timeout", commits: [`${space.id}.${a.db.deviceId}.3`] });
    expect(typeof (timedOut as DurabilityPending).result).toBe("string");
    const ac = new AbortController();
    const aborted = a.db
      .transact((tx) => tx.patients.insert({ name: "Fourth", ward: "A", notes: "" }, { space }), {
        durable: "relay",
        signal: ac.signal,
      })
      .catch((e: unknown) => e);
    await waitFor(a.db.status, (st) => st.pendingCommits === 3, 10_000, "three commits pending");
    ac.abort();
    expect(await aborted).toMatchObject({ code: "DurabilityPending", reason: "aborted" });
    expect(await a.db.patients.count()).toBe(4);
    expect(waiting.settled()).toBe(false);

    // Relay back on the same port and data directory: the wait resolves with fn's result.
    await relay.restart();
    const id = await waiting.value;
    expect((await a.db.patients.get(id))?.name).toBe("Second");
    expect(await a.db.durability(second)).toEqual({ local: true, relay: true, devices: [] });
  });

  it("close() while waiting rejects with DurabilityPending (closed), and the commit is kept", async () => {
    const name = `durable-close-${process.pid}-${Date.now()}`;
    const db = await openDatabase<{ patients: Patient }>({ name, collections: patientCollections });
    // Not syncing at all: the wait can only end by close().
    const waiting = db
      .transact((tx) => tx.patients.insert({ name: "Kept", ward: "A", notes: "" }), { durable: "relay" })
      .catch((e: unknown) => e);
    await waitFor(
      db.live(() => db.patients.count()),
      (n) => n === 1,
      10_000,
      "the commit saved",
    );
    await db.close();
    const err = await waiting;
    expect(err).toBeInstanceOf(DurabilityPending);
    expect(err).toMatchObject({ reason: "closed" });
    const again = await openDatabase<{ patients: Patient }>({ name, collections: patientCollections });
    expect((await again.patients.toArray()).map((p) => p.name)).toEqual(["Kept"]);
    const [commit] = (err as DurabilityPending).commits;
    expect(await again.durability(commit as CommitId)).toEqual({ local: true, relay: false, devices: [] });
    await again.close();
  });

  it("durable: { devices } needs a space with members: refused before anything is written in an open space", async () => {
    const db = await openDatabase<{ patients: Patient }>({
      name: `durable-devices-${process.pid}-${Date.now()}`,
      collections: patientCollections,
    });
    const space = await db.createSpace({ name: "Open" });
    const err = await db
      .transact((tx) => tx.patients.insert({ name: "Never", ward: "A", notes: "" }, { space }), {
        durable: { devices: 2 },
      })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NotSupported);
    expect(err).toMatchObject({ code: "NotSupported", feature: "durable.devices" });
    // Refused before anything is written: the app can retry with "relay" without a duplicate.
    expect(await db.patients.count()).toBe(0);
    const bad = await db.transact(() => 1, { durable: { devices: 0 } }).catch((e: unknown) => e);
    expect(bad).toMatchObject({ code: "ValidationError" });
    // A transaction that writes nothing has nothing to wait for.
    expect(await db.transact(() => 7, { durable: "relay" })).toBe(7);
    expect(await db.transact(() => 8, { durable: { devices: 3 } })).toBe(8);
    await db.close();
  });
});
