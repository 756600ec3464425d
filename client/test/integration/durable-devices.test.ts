// Issue 17, item 4, through a real relay process: `durable: { devices: 2 }` resolves only once two other
// member devices have signed hold receipts for the commit. One of the two is offline, so the wait goes
// on (with one receipt in) until it comes back; `db.durability` names the devices that hold it.
import { afterEach, describe, expect, it } from "vitest";
import type { CommitId, Database, DeviceId } from "../../src/index.ts";
import { waitFor } from "../wait-for.ts";
import {
  closeAllDevices,
  disposeAllRelays,
  openDevice,
  patientCollections,
  RelayHarness,
  relayAcknowledged,
  type Patient,
} from "../relay-harness.ts";

type Db = Database<{ patients: Patient }>;
const device = (label: string) => openDevice<{ patients: Patient }>(label, patientCollections);

afterEach(async () => {
  await closeAllDevices();
  await disposeAllRelays();
});

/** Resolves once `db` knows that `holders` signed hold receipts for `commit`. */
const heldBy = (db: Db, commit: CommitId, holders: readonly DeviceId[]) =>
  waitFor(
    db.live(() => db.durability(commit)),
    (d) => holders.every((h) => d.devices.includes(h)),
    30_000,
    `${commit} held by ${holders.length}`,
  );

describe("durable: { devices } with a relay and three member devices", () => {
  it("waits for two signed hold receipts, one from a device that was offline, and names the holders", async () => {
    const relay = await RelayHarness.start(["--quiet"]);
    const [a, b, c] = await Promise.all([device("a"), device("b"), device("c")]);
    for (const x of [a, b, c]) x.online(relay.url);
    const space = await a.db.createSpace({ name: "Receipts" });
    const toB = await a.db.invite(space, { role: "writer", me: "Dr. A" });
    const toC = await a.db.invite(space, { role: "writer" });
    await relayAcknowledged(a.db, space.id);
    await b.db.join(toB, { name: "Nurse B", relay: relay.url });
    await c.db.join(toC, { name: "Nurse C", relay: relay.url });
    await waitFor(
      a.db.members(space.id),
      (m) => m.members.reduce((n, p) => n + p.devices.length, 0) === 3,
      30_000,
      "three member devices",
    );

    c.offline();
    let settled = false;
    const waiting = a.db
      .transact((tx) => tx.patients.insert({ name: "Dose", ward: "A", notes: "" }, { space }), {
        durable: { devices: 2 },
      })
      .finally(() => (settled = true));
    // Saved locally first: the row is there while the wait goes on.
    const [row] = await waitFor(
      a.db.patients.live((q) => q.where("name").equals("Dose").toArray()),
      (r) => r.length === 1,
      10_000,
      "the commit saved on A",
    );
    const commit = (await a.db.patients.history(row!.id))[0]!.commit as CommitId;
    // B signs its receipt; with C away that is one of two, so the wait goes on.
    await heldBy(a.db, commit, [b.db.deviceId]);
    expect((await a.db.durability(commit)).devices).toEqual([b.db.deviceId]);
    expect(settled).toBe(false);

    // C comes back, receives the commit and the request, and signs too: the wait resolves.
    c.online(relay.url);
    const id = await waiting;
    expect((await a.db.patients.get(id))?.name).toBe("Dose");
    const both = [b.db.deviceId, c.db.deviceId].sort();
    expect((await a.db.durability(commit)).devices).toEqual(both);
    // Every member can check the receipts: they are signed operations of the space's log.
    await heldBy(b.db, commit, both);
    expect((await b.db.durability(commit)).devices).toEqual(both);
  });
});
