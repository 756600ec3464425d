// Leaving a space (issue 14 item 8): everything of it goes from this device, syncing of it stops, the
// other devices go on, and joining again brings it all back, with this device's own commits renumbered
// after its old ones (never reusing a sequence number the relay already holds).
import { afterEach, describe, expect, it } from "vitest";
import type { Database, SpaceId } from "../../src/index.ts";
import { RejoinPending, ValidationError } from "../../src/index.ts";
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
const names = (db: Db) => db.patients.live((c) => c.orderBy("name"));
const device = (label: string) => openDevice<{ patients: Patient }>(label, patientCollections);

/** Every row of every table that names the space, or that is one of the given record ids. */
async function traces(db: Db, space: SpaceId, records: readonly string[]): Promise<string[]> {
  const found: string[] = [];
  for (const table of db.replica.dexie.tables) {
    for (const row of await table.toArray()) {
      const text = JSON.stringify(row, (_k, v) => (v instanceof Uint8Array ? [...v].join(",") : v));
      const keyOf = table.schema.primKey.keyPath;
      const key = Array.isArray(keyOf) ? keyOf.map((k) => row[k]) : keyOf ? row[keyOf] : undefined;
      if (table.name === "_meta" && String(row.key) === `left:${space}`) continue; // the one kept fact
      if (text.includes(space) || records.some((r) => text.includes(r)))
        found.push(`${table.name} ${JSON.stringify(key)}`);
    }
  }
  return found;
}

afterEach(async () => {
  await closeAllDevices();
  await disposeAllRelays();
});

describe("leaving a space", () => {
  it("removes the space and its data from this device, stops its sync, and joining again brings it back", async () => {
    const relay = await RelayHarness.start(["--quiet"]);
    const [a, b] = await Promise.all([device("a"), device("b")]);
    const space = await a.db.createSpace({ name: "Ward 3" });
    const link = await a.db.invite(space, "https://app.example/");
    await b.db.join(link);
    a.online(relay.url);
    b.online(relay.url);

    const ada = await a.db.patients.insert({ name: "Ada", ward: "3", notes: "canary-7d1f" }, { space });
    const bob = await b.db.patients.insert({ name: "Bob", ward: "3", notes: "" }, { space });
    const mine = await b.db.patients.insert({ name: "Private Pat", ward: "-", notes: "" });
    await waitFor(names(b.db), (r) => r.length === 3, 30_000, "b to hold Ada, Bob and its own record");
    await relayAcknowledged(b.db, space.id);

    const report = await b.db.leave(space);
    expect(report).toMatchObject({ space: space.id, records: 2, ownCommits: 1 });
    expect(report.commits).toBeGreaterThanOrEqual(2);
    expect((await b.db.spaces()).map((s) => s.id)).not.toContain(space.id);
    expect((await b.db.patients.toArray()).map((p) => p.name)).toEqual(["Private Pat"]);
    expect(await traces(b.db, space.id, [ada, bob])).toEqual([]);
    // Its sessions for the space stop; the private space goes on syncing.
    await waitFor(
      b.db.status,
      (s) => s.transports.every((t) => t.space !== space.id),
      30_000,
      "b's space sessions gone",
    );
    await expect(
      b.db.patients.insert({ name: "Late", ward: "3", notes: "" }, { space }),
    ).rejects.toBeInstanceOf(ValidationError);

    // The others go on; nothing of what they write reaches b.
    await a.db.patients.insert({ name: "Cy", ward: "3", notes: "" }, { space });
    await relayAcknowledged(a.db, space.id);
    await waitFor(b.db.status, (s) => s.state === "synced", 30_000, "b synced (its private space)");
    expect(await traces(b.db, space.id, [ada, bob])).toEqual([]);
    expect(await b.db.patients.count()).toBe(1);

    // The private space and the last space cannot be left by mistake.
    await expect(b.db.leave(b.db.privateSpace)).rejects.toBeInstanceOf(ValidationError);
    await expect(b.db.leave(space)).rejects.toBeInstanceOf(ValidationError);

    // Joining again: everything comes back, and b's next commit follows its old one (seq 2, not 1 again).
    await b.db.join(link);
    await waitFor(names(b.db), (r) => r.length === 4, 30_000, "b to hold the space again");
    await b.db.patients.update(bob, (p) => void (p.ward = "3b"));
    await relayAcknowledged(b.db, space.id);
    expect((await b.db.vector([space.id]))[space.id]?.[b.db.deviceId]).toBe(2);
    await waitFor(
      names(a.db),
      (r) => r.find((p) => p.id === bob)?.ward === "3b",
      30_000,
      "a to see b's new edit",
    );
    const settled = await waitFor(
      b.db.status,
      (s) => s.state === "synced" && !s.lastError,
      30_000,
      "b synced",
    );
    expect(settled.lastError).toBeFalsy();
  });

  it("a device that joined again cannot write before its own earlier commits are back", async () => {
    const [a, b] = await Promise.all([device("a"), device("b")]);
    const space = await a.db.createSpace({ name: "Field" });
    const link = await a.db.invite(space, "https://app.example/");
    await b.db.join(link);
    const id = await b.db.patients.insert({ name: "Dot", ward: "1", notes: "" }, { space });
    await b.db.patients.update(id, (p) => void (p.ward = "2"));
    const own = await b.db.exportCommits({}, { spaces: [space.id] });

    await b.db.leave(space.id);
    await b.db.join(link);
    // Offline, nothing has come back: a write would take sequence 1, which its old commit holds.
    await expect(
      b.db.patients.insert({ name: "Eve", ward: "1", notes: "" }, { space }),
    ).rejects.toBeInstanceOf(RejoinPending);
    expect(await b.db.vector([space.id])).toEqual({});

    // Its commits come back (here by hand; the relay or a peer does the same), then it writes at 3.
    const applied = await b.db.applyCommits(own, "relay");
    expect(applied.applied).toHaveLength(2);
    await b.db.patients.insert({ name: "Eve", ward: "1", notes: "" }, { space });
    expect((await b.db.vector([space.id]))[space.id]?.[b.db.deviceId]).toBe(3);
    expect((await b.db.patients.toArray()).map((p) => p.ward).sort()).toEqual(["1", "2"]);
  });
});
