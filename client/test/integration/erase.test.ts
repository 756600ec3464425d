// Issue 16, item 1: erase with receipts. An admin erases a patient; every device that applies the erase
// purges it (document, row, history, parked commits), refuses it from every source afterwards (a late
// change by a device that had not heard yet, an old bundle file, a snapshot, its own other tab's
// write), still applies the rest of the same commits, and writes a signed receipt that `db.erasure`
// counts. Carried by bundle files here (no relay: membership and erase ride the same sealed commits).
import { describe, expect, it } from "vitest";
import { NotFound, NotPermitted, type Space } from "../../src/index.ts";
import { joinByInvitation } from "../../src/spaces/join-by-invitation.ts";
import { importSnapshot, readSnapshot } from "../../src/snapshots/snapshot-io.ts";
import { countedErasures } from "../../src/members/counted-in-own-past.ts";
import { creatorKeyOf, opsOf, readMembership } from "../../src/spaces/membership-log.ts";
import type { MemberRow, QuarantineRow, SpaceRow } from "../../src/replica/stored-rows.ts";
import { carry, everything, firstValue, logOf, memberDevice, type MemberDb } from "../member-devices.ts";

const CANARY = "canary-erase-5c1d9e";
const CANARY_NAME = "Erin Canary-7b2f";

/** An admin A, writers B and C, all holding each other's commits; B wrote the patient to erase. */
async function clinic() {
  const [a, b, c] = await Promise.all([memberDevice("admin"), memberDevice("b"), memberDevice("c")]);
  const space = await a.createSpace({ name: "North Clinic" });
  const toB = await a.invite(space, { role: "writer", me: "Dr. Admin" });
  const toC = await a.invite(space, { role: "writer" });
  await joinByInvitation(b.replica, toB, logOf(a), "Nurse B");
  await joinByInvitation(c.replica, toC, logOf(a), "Nurse C");
  // One commit holding the patient to erase and one to keep: the keeper must survive the erase.
  const [erin, keeper] = await b.transact(async (tx) => [
    await tx.patients.insert({ name: CANARY_NAME, notes: CANARY }, { space }),
    await tx.patients.insert({ name: "Keeper", notes: "stays" }, { space }),
  ]);
  await b.patients.update(erin, (p) => {
    p.notes = `${CANARY} seen again`;
  });
  await everywhere([a, b, c], space);
  return { a, b, c, space, erin: erin as string, keeper: keeper as string };
}

/**
 * The clinic, with C made an admin (it will erase) and a patient B wrote that only C received before
 * A demoted B to reader: on A, B's commit comes after B's cut, so A refuses it (membership).
 */
async function lateAfterDemotion() {
  const world = await clinic();
  const { a, b, c, space } = world;
  const person = async (db: MemberDb) =>
    (await readMembership(a.replica.dexie, space.id))!.deviceOwner.get(db.deviceId)!;
  await a.setRole(space, await person(c), "admin");
  await everywhere([a, b, c], space);
  const late = (await b.patients.insert({ name: "Late", notes: CANARY }, { space })) as string;
  await carry(b, c, space);
  await a.setRole(space, await person(b), "reader");
  return { ...world, late };
}

/** Carries every device's commits to every other, twice (so what one carries reaches the third). */
async function everywhere(dbs: MemberDb[], space: Space) {
  for (let round = 0; round < 2; round++)
    for (const from of dbs) for (const to of dbs) if (from !== to) await carry(from, to, space);
}

async function holdsNothingOf(db: MemberDb, id: string) {
  expect(await db.patients.get(id)).toBeUndefined();
  expect(await db.patients.history(id)).toEqual([]);
  const all = await everything(db);
  expect(all).not.toContain(CANARY);
  expect(all).not.toContain(CANARY_NAME);
}

describe("erase with receipts", () => {
  it("purges the record everywhere, keeps the rest of its commits, and counts 3 of 3 receipts", async () => {
    const { a, b, c, space, erin, keeper } = await clinic();
    const oldBundle = await b.exportBundle({ space });
    for (const db of [a, b, c]) expect((await everything(db)).includes(CANARY)).toBe(true);

    // Only an admin erases.
    const refused = await b.patients.erase(erin).catch((e) => e);
    expect(refused).toBeInstanceOf(NotPermitted);

    // C is "offline" (nothing carried to it) while A erases and B hears of it.
    const op = await a.patients.erase(erin);
    expect(op).toMatch(/^[0-9a-f]{64}$/);
    await holdsNothingOf(a, erin);
    expect((await a.patients.get(keeper))?.name).toBe("Keeper");
    expect(await firstValue(a.erasure(erin))).toMatchObject({ erased: 1, of: 3, relayCompacted: false, op });
    // The erase op names the record only sealed: its id is not in the clear log the relay reads.
    const logText = (await a.replica.dexie.table<MemberRow>("_members").toArray()).map((r) => r.op).join();
    expect(logText).toContain('"kind":"erase"');
    expect(logText).not.toContain(erin);

    // C, not yet told, edits the patient: that change must never bring it back anywhere.
    await c.patients.update(erin, (p) => {
      p.notes = `${CANARY} late edit`;
    });
    await carry(a, b, space);
    await holdsNothingOf(b, erin);
    // B's own write to it is refused at once.
    expect(await b.patients.update(erin, (p) => void (p.notes = "x")).catch((e) => e)).toBeInstanceOf(
      NotFound,
    );
    await carry(b, a, space);
    expect(await firstValue(a.erasure(erin))).toMatchObject({ erased: 2, of: 3 });

    // C returns: it drops the record (and its own late edit), receipts show 3 of 3.
    await everywhere([a, b, c], space);
    for (const db of [a, b, c]) await holdsNothingOf(db, erin);
    for (const db of [a, b, c]) {
      expect(await firstValue(db.erasure(erin))).toMatchObject({ erased: 3, of: 3 });
      expect((await db.patients.get(keeper))?.name).toBe("Keeper");
    }

    // An old bundle file that held the patient brings nothing of it back, on any device.
    for (const db of [a, b, c]) {
      await db.importBundle(oldBundle);
      await holdsNothingOf(db, erin);
      expect((await db.patients.get(keeper))?.name).toBe("Keeper");
    }
  });

  it("a device that joins after the erase never stores the record, from a bundle or a snapshot", async () => {
    const { a, b, space, erin, keeper } = await clinic();
    const oldBundle = await b.exportBundle({ space });
    const oldSnapshot = await readSnapshot(b.replica, space.id);
    await a.patients.erase(erin);
    const toD = await a.invite(space, { role: "writer" });
    const d = await memberDevice("d");
    await joinByInvitation(d.replica, toD, logOf(a), "Nurse D");
    // D has the log (the erase among it) before any data: the old bundle is filtered on arrival.
    await d.importBundle(oldBundle);
    await holdsNothingOf(d, erin);
    expect((await d.patients.get(keeper))?.name).toBe("Keeper");
    // A's receipt and D's: B and C have not heard of the erase (nothing carried to them).
    expect(await firstValue(d.erasure(erin))).toMatchObject({ erased: 2, of: 4 });

    // A snapshot that holds a tombstoned id (taken before its erase reached its publisher) is imported
    // without it. (Spaces with members do not publish snapshots yet, so this one is an open space's.)
    const open = await b.createSpace({ name: "Open ward" });
    const [gone, kept] = await b.transact(async (tx) => [
      await tx.patients.insert({ name: CANARY_NAME, notes: CANARY }, { space: open }),
      await tx.patients.insert({ name: "Kept", notes: "" }, { space: open }),
    ]);
    const snapshot = await readSnapshot(b.replica, open.id);
    const e = await memberDevice("e");
    await e.replica.dexie
      .table("_spaces")
      .put((await b.replica.dexie.table<SpaceRow>("_spaces").get(open.id))!);
    await e.replica.dexie.table("_erased").put({ id: gone, space: open.id, op: "0".repeat(64), at: 0 });
    expect(await importSnapshot(e.replica, snapshot)).toBe(true);
    expect(await e.patients.get(gone as string)).toBeUndefined();
    expect((await e.patients.get(kept as string))?.name).toBe("Kept");
    expect(await everything(e)).not.toContain(CANARY);
  });

  it("a commit whose every change was erased before its author sealed it still applies elsewhere", async () => {
    // Fuzz seed 5000 (membership mode): a device cut off inserts a record and erases it; its insert
    // is sealed only when it uploads, from a log that holds it without changes. Every other device must
    // take that empty commit in its slot, not quarantine it as malformed (the author never does).
    const { a, b, space } = await clinic();
    const unsent = "canary-unsent-3a9f";
    const gone = (await a.patients.insert({ name: "Unsent", notes: unsent }, { space })) as string;
    await a.patients.erase(gone);
    await everywhere([a, b], space);
    expect(await b.patients.get(gone)).toBeUndefined();
    expect(await everything(b)).not.toContain(unsent);
    expect(await b.replica.dexie.table("_quarantine").count()).toBe(0);
    const vector = async (db: MemberDb) =>
      (await db.replica.dexie.table("_vectors").toArray()).map((v) => v.seq);
    expect(await vector(b)).toEqual(await vector(a));
  });

  it("counts an erase only if its author was an admin in its own causal past, for good", async () => {
    const { a, b, space, erin } = await clinic();
    await a.patients.erase(erin);
    const rows = await a.replica.dexie.table<MemberRow>("_members").toArray();
    const row = await a.replica.dexie.table<SpaceRow>("_spaces").get(space.id);
    const ops = opsOf(rows);
    const counted = countedErasures(ops, creatorKeyOf(row)!);
    expect(counted).toHaveLength(1);
    // A writer's erase (hand-signed past the API's check) counts nowhere.
    const { signOp, opId } = await import("../../src/members/membership-op.ts");
    const forged = await signOp(b.replica.identity!, {
      space: space.id,
      parents: [...ops.keys()].slice(-1),
      at: Date.now(),
      action: { kind: "erase", record: "0.AAAA" },
    });
    ops.set(await opId(forged), forged);
    expect(countedErasures(ops, creatorKeyOf(row)!)).toEqual(counted);
  });

  it("a commit refused for a dependency whose records are all erased since joins the log empty, as where it came after the erase", async () => {
    // Membership soak seed 100091: such a commit left A's quarantine when the erase applied but never
    // entered its log, while C (which wrote it) held it there without changes: same vectors, different
    // commits. It must end in both logs.
    const { a, b, c, space, late } = await lateAfterDemotion();
    // C edits that patient alone.
    await c.patients.update(late, (p) => void (p.notes = "seen"));
    await carry(b, a, space);
    await carry(c, a, space);
    const quarantine = a.replica.dexie.table<QuarantineRow, string>("_quarantine");
    const refused = (await quarantine.toArray()).find((q) => q.reason === "dependency")!;
    expect(refused.device).toBe(c.deviceId);
    // C erases the patient: on A the refusal is moot, and C's commit joins the log with nothing left in it.
    await c.patients.erase(late);
    await carry(c, a, space);
    expect((await quarantine.toArray()).map((q) => q.reason)).toEqual(["membership"]);
    const inLog = (await a.exportCommits({}, { spaces: [space.id] })).find((x) => x.id === refused.id);
    expect(inLog?.changes).toEqual([]);
    await everywhere([a, b, c], space);
    const ids = async (db: MemberDb) =>
      (await db.exportCommits({}, { spaces: [space.id] })).map((x) => x.id).sort();
    const quarantined = async (db: MemberDb) =>
      (await db.replica.dexie.table<QuarantineRow, string>("_quarantine").toArray()).map((q) => q.id).sort();
    expect(await ids(a)).toEqual(await ids(c));
    expect(await quarantined(a)).toEqual(await quarantined(c));
    expect(await a.patients.get(late)).toBeUndefined();
  });

  it("applies the rest of a commit refused for an erased record's dependency once the erase arrives", async () => {
    const { a, b, c, space, keeper, late } = await lateAfterDemotion();
    // C, not having heard of the demotion, changes the late patient and the keeper in one commit.
    await c.transact(async (tx) => {
      await tx.patients.update(late, (p) => void (p.notes = "seen"));
      await tx.patients.update(keeper, (p) => void (p.notes = "changed by C"));
    });
    await carry(b, a, space);
    await carry(c, a, space);
    // A refused C's commit whole: its change of the late patient builds on B's refused creation.
    const reasons = (await a.replica.dexie.table<QuarantineRow, string>("_quarantine").toArray()).map(
      (q) => q.reason,
    );
    expect(reasons.sort()).toEqual(["dependency", "membership"]);
    expect((await a.patients.get(keeper))?.notes).toBe("stays");
    // C (still unaware of the demotion) erases the late patient. A device that got C's commit after
    // this erase would strip the late patient from it and apply the keeper's change: A now does too.
    await c.patients.erase(late);
    await carry(c, a, space);
    expect((await a.patients.get(keeper))?.notes).toBe("changed by C");
    expect(await a.patients.get(late)).toBeUndefined();
    const left = await a.replica.dexie.table<QuarantineRow, string>("_quarantine").toArray();
    expect(left.map((q) => q.reason)).toEqual(["membership"]);
  });
});
