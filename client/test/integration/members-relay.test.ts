// Issue 13 through a real relay process: an admin invites a writer and a reader with single-use links,
// all three converge, the reader's writes are refused, the writer is removed while offline and keeps
// writing; when it returns the relay turns it away, its later commits never reach the others, and what
// they write afterwards is not in its database. A used link is refused the second time. And "senior admin
// locked out": two admins remove each other offline; by the log's rules the senior (the creator) stays.
// The junior syncs first, so the relay holds the senior removed and refuses its device; the senior's own
// log disagrees, so it appeals with the commits the relay lacks (its removal of the junior among them).
import { afterEach, describe, expect, it } from "vitest";
import { AccessDenied, NotPermitted, type Database, type MembersView, type Space } from "../../src/index.ts";
import { waitFor } from "../wait-for.ts";
import { readMembership } from "../../src/spaces/membership-log.ts";
import {
  closeAllDevices,
  disposeAllRelays,
  openDevice,
  patientCollections,
  RelayHarness,
  relayAcknowledged,
  storedSeqs,
  type Patient,
} from "../relay-harness.ts";

type Db = Database<{ patients: Patient }>;
const device = (label: string) => openDevice<{ patients: Patient }>(label, patientCollections);

afterEach(async () => {
  await closeAllDevices();
  await disposeAllRelays();
});

async function sees(db: Db, name: string): Promise<void> {
  await waitFor(
    db.patients.live((c) => c.where("name").equals(name).toArray()),
    (rows) => rows.length > 0,
    30_000,
    `a patient called ${name}`,
  );
}

function membersOf(db: Db, space: Space, until: (m: MembersView) => boolean, what: string) {
  return waitFor(db.members(space), until, 30_000, what);
}

/** Every row of every table of `db`, as text (byte arrays decoded, so sealed bytes are searched too). */
async function everything(db: Db): Promise<string> {
  const parts: string[] = [];
  for (const t of db.replica.dexie.tables)
    for (const row of await t.toArray())
      parts.push(JSON.stringify(row, (_k, v) => (v instanceof Uint8Array ? new TextDecoder().decode(v) : v)));
  return parts.join("\n");
}

/**
 * A space created by `a` with `b` joined by a `role` link, both online and each seeing both members;
 * `personOf` names a device's person.
 */
async function pairOnRelay(relay: RelayHarness, role: "admin" | "writer") {
  const [a, b] = await Promise.all([device("admin"), device(role)]);
  for (const x of [a, b]) x.online(relay.url);
  const space = await a.db.createSpace({ name: "North Clinic" });
  const link = await a.db.invite(space, { role, me: "Dr. Admin" });
  await relayAcknowledged(a.db, space.id);
  await b.db.join(link, { name: "Nurse B", relay: relay.url });
  for (const x of [a, b])
    await membersOf(x.db, space, (m) => m.members.length === 2, "both members everywhere");
  const view = await membersOf(a.db, space, (m) => m.members.length === 2, "members");
  const personOf = (db: Db) =>
    view.members.find((m) => m.devices.some((d) => d.device === db.deviceId))!.person;
  return { a, b, space, personOf };
}

/** A space created by A1 (senior) with A2 as a second admin, both online and seeing each other. */
async function twoAdmins(relay: RelayHarness) {
  const { a: a1, b: a2, space, personOf } = await pairOnRelay(relay, "admin");
  return { a1, a2, space, senior: personOf(a1.db), junior: personOf(a2.db) };
}

describe("members through the relay", () => {
  it("invites, refuses a reader, cuts off a removed device and refuses a used link", async () => {
    const relay = await RelayHarness.start();
    const [a, b, c, d] = await Promise.all([
      device("admin"),
      device("writer"),
      device("reader"),
      device("late"),
    ]);
    for (const x of [a, b, c, d]) x.online(relay.url);
    const space = await a.db.createSpace({ name: "North Clinic" });
    const toB = await a.db.invite(space, { role: "writer", me: "Dr. Admin" });
    const toC = await a.db.invite(space, { role: "reader" });
    await a.db.patients.insert({ name: "Ada", ward: "A", notes: "" }, { space });
    // The invitations must be at the relay before anyone can redeem them.
    await relayAcknowledged(a.db, space.id);
    await b.db.join(toB, { name: "Nurse B", relay: relay.url });
    await c.db.join(toC, { name: "Reader C", relay: relay.url });
    for (const x of [a, b, c])
      await membersOf(x.db, space, (m) => m.members.length === 3, "three members everywhere");
    for (const x of [b, c]) await sees(x.db, "Ada");
    const view = await membersOf(a.db, space, (m) => m.members.length === 3, "members");
    expect(view.members.map((m) => `${m.name}:${m.role}`).sort()).toEqual([
      "Dr. Admin:admin",
      "Nurse B:writer",
      "Reader C:reader",
    ]);

    // The reader cannot write, on its own device.
    const refused = await c.db.patients
      .insert({ name: "Nope", ward: "C", notes: "" }, { space })
      .catch((e) => e);
    expect(refused).toBeInstanceOf(NotPermitted);
    await b.db.patients.insert({ name: "From B", ward: "B", notes: "" }, { space });
    for (const x of [a, c]) await sees(x.db, "From B");

    // B goes offline; A removes B; B keeps writing.
    b.offline();
    const bPerson = view.members.find((m) => m.name === "Nurse B")!.person;
    await a.db.remove(space, { person: bPerson });
    await b.db.patients.insert({ name: "B after removal", ward: "B", notes: "" }, { space });
    await a.db.patients.insert({ name: "After A", ward: "A", notes: "canary-a-91e0" }, { space });
    await sees(c.db, "After A");
    await membersOf(c.db, space, (m) => m.epoch !== 0 && m.members.length === 2, "C to see the rotation");
    await a.db.patients.insert({ name: "Also after", ward: "A", notes: "canary-a2-77b1" }, { space });
    await sees(c.db, "Also after");

    // B returns: the relay refuses it, and nothing of its later commit reaches the others.
    b.online(relay.url);
    await waitFor(
      b.db.status,
      (s) => s.lastError?.code === "AccessDenied" && s.lastError.reason === "removed",
      30_000,
      "the relay to refuse the removed device",
    );
    for (const x of [a, c]) {
      const names = (await x.db.patients.toArray()).map((p) => p.name).sort();
      expect(names).toEqual(["Ada", "After A", "Also after", "From B"]);
    }
    const stored = await everything(b.db);
    expect(stored).not.toContain("canary-a-91e0");
    expect(stored).not.toContain("canary-a2-77b1");

    // A second redemption of B's used link is refused with its typed error.
    const again = await d.db.join(toB, { name: "Mallory", relay: relay.url }).catch((e) => e);
    expect(again).toBeInstanceOf(AccessDenied);
    expect(again.reason).toBe("invitation-used");
  });

  it("a removed device's late commit that reached a member by file is refused once by the relay, not resent", async () => {
    const relay = await RelayHarness.start();
    const { a, b, space, personOf } = await pairOnRelay(relay, "writer");
    b.offline();
    await a.db.remove(space, { person: personOf(b.db) });
    await b.db.patients.insert({ name: "Late", ward: "B", notes: "" }, { space });
    // The late commit reaches A by file: quarantined there, its sealed bytes kept (as every held slot).
    await a.db.importBundle(await b.db.exportBundle({ space, since: await a.db.vector([space.id]) }));
    expect((await a.db.quarantine(space)).map((q) => q.reason)).toEqual(["membership"]);
    // A forwards what the relay lacks; the relay refuses B's late commit, and A goes on.
    await waitFor(
      a.db.status,
      (s) => s.lastError?.code === "Relay:membership",
      30_000,
      "the relay to refuse the removed device's late commit",
    );
    await a.db.patients.insert({ name: "Goes on", ward: "A", notes: "" }, { space });
    await relayAcknowledged(a.db, space.id);
    await a.db.patients.insert({ name: "And on", ward: "A", notes: "" }, { space });
    await relayAcknowledged(a.db, space.id);
    // Refused once on this connection, not sent again after every ack and gap.
    const metrics = await (await fetch(`${relay.url}/metrics`)).text();
    const refused = Number(/shoal_commits_refused_total\{code="membership"\} (\d+)/.exec(metrics)?.[1] ?? 0);
    expect(refused).toBe(1);
    const bSeq = (await b.db.vector([space.id]))[space.id]![b.db.deviceId]!;
    expect(storedSeqs(relay.sqliteFile, space.id, b.db.deviceId)).not.toContain(bSeq);
  });
});

describe("leaving a space with members", () => {
  it("for good: the relay takes its removal, the others list it no more, and refuse it after", async () => {
    const relay = await RelayHarness.start();
    const { a, b, space } = await pairOnRelay(relay, "writer");
    await b.db.patients.insert({ name: "Written before leaving", ward: "B", notes: "" }, { space });
    const report = await b.db.leave(space, { announce: true });
    expect(report.announced).toBe(true);
    expect(report.records).toBe(1);
    const view = await membersOf(a.db, space, (m) => m.members.length === 1, "the leaver gone");
    expect(view.members.map((m) => m.name)).toEqual(["Dr. Admin"]);
    // What it wrote before leaving stays, attributed to it.
    await sees(a.db, "Written before leaving");
    // Its device is a removed one in the log, so anything it might still send is refused everywhere.
    const state = await readMembership(a.db.replica.dexie, space.id);
    expect(state?.removedDevices.has(b.db.deviceId)).toBe(true);
    expect(await b.db.replica.dexie.table("_spaces").get(space.id)).toBeUndefined();
  });
});

function refusedAsRemoved(db: Db, what: string) {
  return waitFor(
    db.status,
    (s) => s.lastError?.code === "AccessDenied" && s.lastError.reason === "removed",
    30_000,
    what,
  );
}

/** `shoal_appeals_total` by status, from the relay's /metrics page. */
async function appeals(relay: RelayHarness): Promise<Record<string, number>> {
  const page = await (await fetch(`${relay.url}/metrics`)).text();
  const out: Record<string, number> = {};
  for (const [, status, n] of page.matchAll(/shoal_appeals_total\{status="(\d+)"\} (\d+)/g))
    out[status!] = Number(n);
  return out;
}

describe("a senior admin removed by a junior first", () => {
  it("appeals, is let in, and the junior is removed at the relay and on the senior's device", async () => {
    const relay = await RelayHarness.start();
    const { a1, a2, space, senior, junior } = await twoAdmins(relay);
    a1.offline();
    a2.offline();
    await a2.db.remove(space, { person: senior });
    await a1.db.remove(space, { person: junior });
    await a1.db.patients.insert({ name: "Written offline", ward: "A", notes: "" }, { space });

    // The junior's removal reaches the relay first: from then on it holds the senior removed.
    a2.online(relay.url);
    await relayAcknowledged(a2.db, space.id);
    a1.online(relay.url);
    await relayAcknowledged(a1.db, space.id);
    // One admitted appeal (the junior, closed out while online, may appeal in vain: its own log lacks
    // the senior's removal of it).
    expect((await appeals(relay))["200"]).toBe(1);
    const a1Head = (await a1.db.vector([space.id]))[space.id]![a1.db.deviceId]!;
    expect(storedSeqs(relay.sqliteFile, space.id, a1.db.deviceId)).toContain(a1Head);

    // The full log everywhere it can reach: the senior stays, the junior is out.
    const view = await membersOf(
      a1.db,
      space,
      (m) => m.members.length === 1 && m.removedDevices.includes(a2.db.deviceId),
      "the senior to hold the junior removed",
    );
    expect(view.members.map((m) => m.person)).toEqual([senior]);
    await refusedAsRemoved(a2.db, "the relay to refuse the junior");
    a2.offline();
    a2.online(relay.url);
    await refusedAsRemoved(a2.db, "the relay to refuse the junior again");
    const rows = await (await fetch(`${relay.url}/metrics`)).text();
    expect(rows).toMatch(/shoal_refusals_total\{reason="removed"\} [1-9]/);
  });

  it("a device whose own log removed it does not appeal, and stays refused", async () => {
    const relay = await RelayHarness.start();
    const { a1, a2, space, junior } = await twoAdmins(relay);
    // Online while removed: the removal reaches the junior's device before the relay closes it.
    await a1.db.remove(space, { person: junior });
    await membersOf(a2.db, space, (m) => m.removedDevices.includes(a2.db.deviceId), "the junior to see it");
    await refusedAsRemoved(a2.db, "the relay to refuse the junior");
    a2.offline();
    a2.online(relay.url);
    await refusedAsRemoved(a2.db, "the relay to refuse the junior again");
    expect(await appeals(relay)).toEqual({});
  });
});
