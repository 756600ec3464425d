import { afterEach, describe, expect, it } from "vitest";
import type { CommitId, Database } from "../../src/index.ts";
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
const rows = (db: Db) => db.patients.live((c) => c.orderBy("name"));
const device = (label: string) => openDevice<{ patients: Patient }>(label, patientCollections);

afterEach(async () => {
  await closeAllDevices();
  await disposeAllRelays();
});

describe("sync through the relay process (sqlite store)", () => {
  it("converges edits both ways between three devices, keeping both sides of concurrent text edits", async () => {
    const relay = await RelayHarness.start(["--quiet"]);
    const [a, b, c] = await Promise.all([device("a"), device("b"), device("c")]);
    const space = await a.db.createSpace({ name: "North Clinic" });
    const link = await a.db.invite(space, "https://app.example/");
    await b.db.join(link);
    await c.db.join(link);
    for (const d of [a, b, c]) d.online(relay.url);

    const id = await a.db.patients.insert({ name: "Ada", ward: "A", notes: "Note." }, { space });
    await waitFor(rows(b.db), (r) => r.length === 1, 30_000, "b to receive Ada");
    await waitFor(rows(c.db), (r) => r.length === 1, 30_000, "c to receive Ada");
    await b.db.patients.insert({ name: "Bob", ward: "B", notes: "" }, { space });
    await waitFor(rows(a.db), (r) => r.map((p) => p.name).join() === "Ada,Bob", 30_000, "a to receive Bob");
    await waitFor(rows(c.db), (r) => r.length === 2, 30_000, "c to receive Bob");

    // Concurrent edits of one text field, made while both are disconnected.
    a.offline();
    b.offline();
    await a.db.patients.update(id, (p) => void (p.notes = "Start. Note."));
    await b.db.patients.update(id, (p) => void (p.notes = "Note. End."));
    a.online(relay.url);
    b.online(relay.url);
    const want = "Start. Note. End.";
    for (const [name, d] of [
      ["a", a],
      ["b", b],
      ["c", c],
    ] as const) {
      await waitFor(
        rows(d.db),
        (r) => r.find((p) => p.id === id)?.notes === want,
        30_000,
        `${name} to merge both edits`,
      );
    }
    const vector = await a.db.vector([space.id]);
    expect(await b.db.vector([space.id])).toEqual(vector);
    expect(await c.db.vector([space.id])).toEqual(vector);
    await relayAcknowledged(a.db, space.id);
    const s = await waitFor(
      a.db.status,
      (st) => st.state === "synced" && st.pendingCommits === 0,
      30_000,
      "a synced",
    );
    expect(s.transports.every((t) => t.state === "connected")).toBe(true);
  });

  it("two devices never online at the same time converge through the relay's store", async () => {
    const relay = await RelayHarness.start(["--quiet"]);
    const a = await device("a");
    const b = await device("b");
    const space = await a.db.createSpace({ name: "Field" });
    await b.db.join(await a.db.invite(space, "https://app.example/"));

    // A works while B is offline...
    a.online(relay.url);
    const ids: string[] = [];
    for (let i = 0; i < 30; i++) {
      ids.push(
        await a.db.patients.insert(
          { name: `P${String(i).padStart(2, "0")}`, ward: "A", notes: "" },
          { space },
        ),
      );
    }
    await a.db.patients.update(ids[3]!, (p) => void (p.ward = "ICU"));
    await a.db.patients.delete(ids[4]!);
    await relayAcknowledged(a.db, space.id);
    await waitFor(a.db.status, (st) => st.pendingCommits === 0, 30_000, "a's status to show nothing pending");
    // ...then goes offline before B comes online.
    a.offline();
    await waitFor(a.db.status, (st) => st.state === "local", 10_000, "a stopped");
    expect(a.isOnline).toBe(false);
    b.online(relay.url);
    const got = await waitFor(rows(b.db), (r) => r.length === 29, 30_000, "b to receive everything");
    expect(got.find((p) => p.id === ids[3])?.ward).toBe("ICU");
    expect(got.some((p) => p.id === ids[4])).toBe(false);
    await waitFor(b.db.status, (st) => st.state === "synced", 30_000, "b synced");
    expect(await b.db.vector([space.id])).toEqual(await a.db.vector([space.id]));
    expect(await b.db.patients.get(ids[0]!)).toMatchObject({ name: "P00", ward: "A" });
  });

  it("pendingCommits and durability() tell 'saved on this device' from 'acknowledged by the relay'", async () => {
    const relay = await RelayHarness.start(["--quiet"]);
    const a = await device("a");
    const space = await a.db.createSpace({ name: "Receipts" });
    a.online(relay.url);
    await a.db.patients.insert({ name: "First", ward: "A", notes: "" }, { space });
    await relayAcknowledged(a.db, space.id);
    await waitFor(
      a.db.status,
      (st) => st.state === "synced" && st.pendingCommits === 0,
      30_000,
      "a synced, nothing pending",
    );

    await relay.stop("SIGTERM");
    await waitFor(
      a.db.status,
      (st) => st.transports.every((t) => t.state !== "connected"),
      10_000,
      "a to see the relay gone",
    );
    for (const name of ["Second", "Third", "Fourth"])
      await a.db.patients.insert({ name, ward: "A", notes: "" }, { space });
    const down = await waitFor(
      a.db.status,
      (st) => st.pendingCommits === 3,
      10_000,
      "three commits pending while the relay is down",
    );
    expect(down.state).not.toBe("synced");
    const commits = await a.db.exportCommits({}, { spaces: [space.id] });
    expect(commits).toHaveLength(4);
    expect(await a.db.durability(commits[0]!.id)).toEqual({ local: true, relay: true, devices: [] });
    for (const c of commits.slice(1))
      expect(await a.db.durability(c.id)).toEqual({ local: true, relay: false, devices: [] });

    await relay.restart();
    // No nudge: the session reconnects by itself (backoff) and uploads what is pending.
    await waitFor(
      a.db.status,
      (st) => st.pendingCommits === 0,
      60_000,
      "pending commits acknowledged after the restart",
    );
    for (const c of commits) expect(await a.db.durability(c.id)).toEqual({ local: true, relay: true, devices: [] });
    expect(await a.db.durability(`${space.id}.${a.db.deviceId}.99` as CommitId)).toEqual({
      local: false,
      relay: false,
      devices: [],
    });
  });
});
