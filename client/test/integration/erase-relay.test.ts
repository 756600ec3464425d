// Issue 16, item 1, through a real relay process: three devices, one offline while an admin erases a
// patient. The relay stores the erase and the receipts (its log check knows them), the offline device
// drops the patient when it returns, and the receipts reach 3 of 3 on every device.
import { afterEach, describe, expect, it } from "vitest";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { Database, ErasureStatus } from "../../src/index.ts";
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
const CANARY = "canary-relay-erase-0e4b";

afterEach(async () => {
  await closeAllDevices();
  await disposeAllRelays();
});

const receipts = (db: Db, id: string, n: number) =>
  waitFor(db.erasure(id), (e: ErasureStatus) => e.erased === n && e.of === 3, 30_000, `${n} of 3 receipts`);

describe("erase through the relay", () => {
  it("reaches a device that was offline, and every device signs a receipt", async () => {
    const relay = await RelayHarness.start();
    const [a, b, c] = await Promise.all([device("admin"), device("b"), device("c")]);
    for (const x of [a, b, c]) x.online(relay.url);
    const space = await a.db.createSpace({ name: "North Clinic" });
    const toB = await a.db.invite(space, { role: "writer", me: "Dr. Admin" });
    const toC = await a.db.invite(space, { role: "writer" });
    await relayAcknowledged(a.db, space.id);
    await b.db.join(toB, { name: "Nurse B", relay: relay.url });
    await c.db.join(toC, { name: "Nurse C", relay: relay.url });
    const id = await b.db.patients.insert({ name: "Erin", ward: "A", notes: CANARY }, { space });
    const keep = await b.db.patients.insert({ name: "Keeper", ward: "A", notes: "" }, { space });
    for (const x of [a, c])
      await waitFor(
        x.db.patients.live((q) => q.where("name").equals("Keeper").toArray()),
        (r) => r.length > 0,
        30_000,
        "Keeper",
      );
    expect((await c.db.patients.get(id))?.notes).toBe(CANARY);

    c.offline();
    await a.db.patients.erase(id);
    await receipts(a.db, id, 2); // A's and B's
    await waitFor(
      b.db.patients.live((q) => q.where("name").equals("Erin").toArray()),
      (r) => r.length === 0,
      30_000,
      "B to drop Erin",
    );

    c.online(relay.url);
    for (const x of [a, b, c]) await receipts(x.db, id, 3);
    expect(await c.db.patients.get(id)).toBeUndefined();
    expect((await c.db.patients.get(keep))?.name).toBe("Keeper");
    expect(await c.db.patients.history(id)).toEqual([]);
    // The relay's files hold the record only sealed (the plaintext canary is nowhere).
    for (const f of readdirSync(relay.dataDir))
      expect(readFileSync(join(relay.dataDir, f), "latin1").includes(CANARY), f).toBe(false);
  });
});
