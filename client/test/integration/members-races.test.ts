// Regressions the convergence fuzzer's membership mode found (issue 13): a reader that joined could
// write until a remote membership commit arrived, and a member whose redemption an admin had not seen
// when it rotated the key never got the new key (the rotation was sealed to its invitation only).
// Everything travels by bundle files; the joining devices read the log from the admin's replica.
import { afterEach, describe, expect, it } from "vitest";
import { openDatabase, type Database, type Space } from "../../src/index.ts";
import type { MembershipOp } from "../../src/members/membership-op.ts";
import { markVerifiedMembership } from "../../src/members/verified-ops.ts";
import type { MemberRow, SpaceRow } from "../../src/replica/stored-rows.ts";
import { joinByInvitation } from "../../src/spaces/join-by-invitation.ts";
import { rotateKey } from "../../src/spaces/manage-members.ts";
import { absorbMembership, readMembership } from "../../src/spaces/membership-log.ts";

type P = { name: string; notes: string };
type Db = Database<{ patients: P }>;
const collections = { patients: { indexes: "id, name", text: ["notes"] } };
let n = 0;
const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

async function device(label: string): Promise<Db> {
  const db = await openDatabase<{ patients: P }>({
    name: `members-races-${label}-${process.pid}-${n++}`,
    collections,
    persist: false,
  });
  cleanup.push(() => db.close());
  return db;
}

const logOf = (admin: Db) => async (): Promise<MembershipOp[]> =>
  (await admin.replica.dexie.table<MemberRow>("_members").toArray()).map((r) => JSON.parse(r.op));

async function carry(from: Db, to: Db, space: Space) {
  return to.importBundle(await from.exportBundle({ space, since: await to.vector([space.id]) }));
}

describe("membership races", () => {
  it("refuses a reader's first write right after it joined, before anything else arrived", async () => {
    const [a, r] = await Promise.all([device("admin"), device("reader")]);
    const space = await a.createSpace({ name: "North Clinic" });
    await joinByInvitation(r.replica, await a.invite(space, { role: "reader" }), logOf(a), "Reader");
    await expect(r.patients.insert({ name: "Not mine to write", notes: "" }, { space })).rejects.toMatchObject({
      code: "NotPermitted",
      reason: "reader",
    });
    // Nothing waits to be uploaded that every other replica would refuse.
    expect((await r.exportCommits({}, { spaces: [space.id] })).filter((c) => c.membership === undefined)).toEqual([]);
  });

  it("opens a rotation sealed to its invitation when the admin rotated before seeing the redemption", async () => {
    const [a, b] = await Promise.all([device("admin"), device("joiner")]);
    const space = await a.createSpace({ name: "North Clinic" });
    const link = await a.invite(space, { role: "writer" });
    await joinByInvitation(b.replica, link, logOf(a), "Nurse B");
    // B already counts itself a member (as after any earlier remote membership commit): the
    // invitation's secret is no longer a proof for the relay ...
    await absorbMembership(b.replica, space.id);
    const joined = await b.replica.dexie.table<SpaceRow>("_spaces").get(space.id);
    expect(joined?.invitation).toBeUndefined();
    // ... when A's rotation arrives, made before A saw the redemption: sealed to the invitation only.
    const epoch = await rotateKey(a.replica, space.id);
    await a.patients.insert({ name: "After rotation", notes: "" }, { space });
    await carry(b, a, space);
    await carry(a, b, space);
    const row = await b.replica.dexie.table<SpaceRow>("_spaces").get(space.id);
    expect(Object.keys(row?.epochKeys ?? {})).toContain(String(epoch));
    expect((await b.patients.toArray()).map((p) => p.name)).toEqual(["After rotation"]);
  });

  it("sees its demotion when the set-role commit, parked behind a missing commit, applies later", async () => {
    const [a, b] = await Promise.all([device("admin"), device("writer")]);
    const space = await a.createSpace({ name: "North Clinic" });
    await joinByInvitation(b.replica, await a.invite(space, { role: "writer" }), logOf(a), "Nurse B");
    await carry(b, a, space);
    await carry(a, b, space);
    const person = (await readMembership(a.replica.dexie, space.id))!.deviceOwner.get(b.deviceId);
    await a.patients.insert({ name: "Written just before", notes: "" }, { space });
    await a.setRole(space, person!, "reader");
    const [data, setRole] = (await a.exportCommits(await b.vector([space.id]), { spaces: [space.id] })).slice(-2);
    expect(setRole!.membership).toBeDefined();
    // The set-role commit first: it waits for the data commit before it (same device) ...
    // (Marked as the sealer marks what it opened from signed bytes: a test shortcut past sealing.)
    await b.applyCommits([markVerifiedMembership({ ...setRole! })], "peer");
    await b.patients.insert({ name: "Still a writer here", notes: "" }, { space });
    // ... which arrives alone; both apply, and B now knows it is a reader.
    await b.applyCommits([data!], "peer");
    const row = await b.replica.dexie.table<SpaceRow>("_spaces").get(space.id);
    expect(row?.readOnly).toBe("reader");
  });

  it("removes a reader with a cut below the write it refused, so a later receiver refuses it too", async () => {
    const [a, b, c] = await Promise.all([device("admin"), device("writer"), device("late")]);
    const space = await a.createSpace({ name: "North Clinic" });
    await joinByInvitation(b.replica, await a.invite(space, { role: "writer" }), logOf(a), "Nurse B");
    await carry(b, a, space);
    const person = (await readMembership(a.replica.dexie, space.id))!.deviceOwner.get(b.deviceId)!;
    await a.setRole(space, person, "reader");
    // B has not heard yet: its write reaches A, which refuses it (B is a reader there) ...
    await b.patients.insert({ name: "Written as a reader", notes: "" }, { space });
    await carry(b, a, space);
    expect((await a.quarantine(space)).map((q) => q.reason)).toEqual(["membership"]);
    // ... then A removes B: the cut stays below the refused write.
    await a.remove(space, { person });
    const refused = (await a.quarantine(space))[0]!;
    expect((await readMembership(a.replica.dexie, space.id))!.removedDevices.get(b.deviceId)).toBeLessThan(refused.seq);
    // A device that joins afterwards refuses it as well.
    await joinByInvitation(c.replica, await a.invite(space, { role: "writer" }), logOf(a), "Late C");
    await carry(a, c, space);
    await carry(b, c, space);
    expect((await c.patients.toArray()).map((p) => p.name)).not.toContain("Written as a reader");
  });
});
