// Issue 16, item 2: retention. A collection declares how long records are kept after a date; the first
// admin device that sweeps (on open, or when the app asks) erases those past it, each as a signed
// `erase` every device applies, so the outcome never depends on the other devices' clocks.
import { afterEach, describe, expect, it } from "vitest";
import { openDatabase, SchemaError, type Database } from "../../src/index.ts";
import { joinByInvitation } from "../../src/spaces/join-by-invitation.ts";
import type { MemberRow } from "../../src/replica/stored-rows.ts";

type Visit = { patient: string; date: string | number; notes: string };
type Db = Database<{ visits: Visit }>;
const collections = {
  visits: { indexes: "id, date", text: ["notes"] as const, retention: { field: "date", years: 10 } },
};

let n = 0;
const open: Db[] = [];
afterEach(async () => {
  for (const db of open.splice(0).reverse()) await db.close();
});

/** A device whose clock reads `clock.now` (settable by the test). */
async function device(
  label: string,
  clock: { now: number },
  name = `retention-${label}-${process.pid}-${n++}`,
) {
  const db = (await openDatabase({
    name,
    collections: collections as never,
    persist: false,
    clock: () => clock.now,
  })) as unknown as Db;
  open.push(db);
  return db;
}

/** Sends what `to` lacks of `from`'s commits of the space as a bundle file. */
async function carry(from: Db, to: Db, space: { id: string }) {
  return to.importBundle(
    await from.exportBundle({ space: space.id as never, since: await to.vector([space.id as never]) }),
  );
}

describe("retention", () => {
  it("erases the records past their rule, by this device's clock less a day of grace, and nothing else", async () => {
    const clock = { now: Date.parse("2030-01-01T00:00:00Z") };
    const db = await device("one", clock);
    await db.sweepRetention(); // the one started by opening, with nothing to do
    const old = await db.visits.insert({ patient: "p1", date: "2025-02-01", notes: "old" });
    const oldNumber = await db.visits.insert({
      patient: "p2",
      date: Date.parse("2020-01-01T00:00:00Z"),
      notes: "",
    });
    const recent = await db.visits.insert({ patient: "p3", date: "2026-06-01T08:00:00Z", notes: "recent" });
    const garbage = await db.visits.insert({ patient: "p4", date: "not a date", notes: "" });
    const edge = await db.visits.insert({ patient: "p5", date: "2025-03-01T00:00:00Z", notes: "edge" });

    // Ten years and half a day after `edge`: past it, but within the grace allowed to a fast clock.
    clock.now = Date.parse("2035-03-01T12:00:00Z");
    const first = await db.sweepRetention();
    expect(first.erased.map((e) => e.id).sort()).toEqual([old, oldNumber].sort());
    expect(first.notPermitted).toEqual([]);
    expect(await db.visits.get(old)).toBeUndefined();
    expect(await db.visits.get(oldNumber)).toBeUndefined();
    expect(await db.visits.history(old)).toEqual([]);
    expect((await db.visits.get(edge))?.notes).toBe("edge");

    clock.now = Date.parse("2035-03-02T00:00:01Z");
    expect((await db.sweepRetention()).erased.map((e) => e.id)).toEqual([edge]);
    expect((await db.sweepRetention()).erased).toEqual([]);
    expect((await db.visits.get(recent))?.notes).toBe("recent");
    expect((await db.visits.get(garbage))?.patient).toBe("p4");
  });

  it("is swept when the database opens, with the clock of that moment", async () => {
    const clock = { now: Date.parse("2030-01-01T00:00:00Z") };
    const name = `retention-reopen-${process.pid}-${n++}`;
    const first = await device("a", clock, name);
    const id = await first.visits.insert({ patient: "p", date: "2021-05-05", notes: "" });
    await first.close();
    clock.now = Date.parse("2031-05-07T00:00:00Z");
    const again = await device("a", clock, name);
    await expect.poll(() => again.visits.get(id), { timeout: 20_000 }).toBeUndefined();
  });

  it("is a signed erase by an admin that other devices apply; a writer's sweep leaves it to the admin", async () => {
    const clock = { now: Date.parse("2040-01-01T00:00:00Z") };
    // The writer's clock runs years ahead: it may not erase anyway, and its clock decides nothing.
    const writerClock = { now: Date.parse("2050-01-01T00:00:00Z") };
    const [admin, writer] = await Promise.all([device("admin", clock), device("writer", writerClock)]);
    const space = await admin.createSpace({ name: "North Clinic" });
    const invite = await admin.invite(space, { role: "writer", me: "Admin" });
    const log = async () =>
      (await admin.replica.dexie.table<MemberRow>("_members").toArray()).map((r) => JSON.parse(r.op));
    await joinByInvitation(writer.replica, invite, log, "Nurse");
    const expired = await writer.visits.insert(
      { patient: "p", date: "2028-01-01", notes: "canary-ret-1" },
      { space },
    );
    const kept = await writer.visits.insert({ patient: "q", date: "2039-01-01", notes: "kept" }, { space });
    await carry(writer, admin, space);
    await carry(admin, writer, space);

    const byWriter = await writer.sweepRetention();
    expect(byWriter.erased).toEqual([]);
    // By its fast clock both are past the rule, but it may erase neither.
    expect(byWriter.notPermitted.map((e) => e.id).sort()).toEqual([expired, kept].sort());
    expect((await writer.visits.get(expired))?.notes).toBe("canary-ret-1");

    const byAdmin = await admin.sweepRetention();
    expect(byAdmin.erased).toEqual([{ collection: "visits", id: expired }]);
    await carry(admin, writer, space);
    expect(await writer.visits.get(expired)).toBeUndefined();
    expect(await writer.visits.history(expired)).toEqual([]);
    expect((await writer.visits.get(kept))?.notes).toBe("kept");
    // Both devices now list the same erase, whoever's clock says what.
    const erasures = async (db: Db) =>
      (await db.replica.dexie.table<{ id: string }>("_erased").toArray()).map((r) => r.id);
    expect(await erasures(writer)).toEqual(await erasures(admin));
    expect(await erasures(admin)).toEqual([expired]);
  }, 60_000);

  it("refuses a rule on a field without a plain index of its own", async () => {
    for (const retention of [
      { field: "notes", years: 1 },
      { field: "date", years: -1 },
    ]) {
      await expect(
        openDatabase({
          name: `retention-bad-${n++}`,
          collections: { visits: { indexes: "id, date", retention } },
          persist: false,
        }),
      ).rejects.toBeInstanceOf(SchemaError);
    }
  });
});
