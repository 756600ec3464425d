// Issue 13, "senior admin locked out": two admins remove each other while both are offline. By the log's
// rules the senior (the space's creator) stays. The junior syncs first, so the relay holds the senior
// removed and refuses its device; the senior's own state disagrees, so it appeals with its commits the
// relay lacks (its removal of the junior among them), is let in, and everyone converges on the full log.
import { afterEach, describe, expect, it } from "vitest";
import type { Database, MembersView, Space } from "../../src/index.ts";
import { waitFor } from "../wait-for.ts";
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

function membersOf(db: Db, space: Space, until: (m: MembersView) => boolean, what: string) {
  return waitFor(db.members(space), until, 30_000, what);
}

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

/** A space created by A1 (senior) with A2 as a second admin, both online and seeing each other. */
async function twoAdmins(relay: RelayHarness) {
  const [a1, a2] = await Promise.all([device("senior"), device("junior")]);
  for (const x of [a1, a2]) x.online(relay.url);
  const space = await a1.db.createSpace({ name: "North Clinic" });
  const link = await a1.db.invite(space, { role: "admin", me: "Dr. Senior" });
  await relayAcknowledged(a1.db, space.id);
  await a2.db.join(link, { name: "Dr. Junior", relay: relay.url });
  for (const x of [a1, a2])
    await membersOf(x.db, space, (m) => m.members.length === 2, "both admins everywhere");
  const view = await membersOf(a1.db, space, (m) => m.members.length === 2, "members");
  const person = (db: Db) =>
    view.members.find((m) => m.devices.some((d) => d.device === db.deviceId))!.person;
  return { a1, a2, space, senior: person(a1.db), junior: person(a2.db) };
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
