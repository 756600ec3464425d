// Issue 13 with no relay at all: members, roles, invitations, removal and key rotation carried by
// bundle files. The joining devices read the space's membership log from the admin's replica (what the
// relay's invitation endpoint answers), everything else travels as sealed commits in files.
import { afterEach, describe, expect, it } from "vitest";
import { NotPermitted, type Space } from "../../src/index.ts";
import type { SpaceRow } from "../../src/replica/stored-rows.ts";
import { markVerifiedMembership } from "../../src/members/verified-ops.ts";
import { carry, everything, firstValue, logOf, memberDevice, type MemberDb } from "../member-devices.ts";
import { joinByInvitation } from "../../src/spaces/join-by-invitation.ts";
import { rotateKey } from "../../src/spaces/manage-members.ts";
import { absorbMembership, readMembership } from "../../src/spaces/membership-log.ts";

const device = memberDevice;
const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

describe("members over bundle files", () => {
  it("invites a writer and a reader, refuses the reader's writes, and locks out a removed device", async () => {
    const [a, b, c] = await Promise.all([device("admin"), device("writer"), device("reader")]);
    const space = await a.createSpace({ name: "North Clinic" });
    const toB = await a.invite(space, { role: "writer", me: "Dr. Admin" });
    const toC = await a.invite(space, { role: "reader" });
    await a.patients.insert({ name: "Ada", notes: "" }, { space });
    const spaceB = await joinByInvitation(b.replica, toB, logOf(a), "Nurse B");
    const spaceC = await joinByInvitation(c.replica, toC, logOf(a), "Reader C");
    expect(spaceB.id).toBe(space.id);
    expect(spaceC.id).toBe(space.id);
    // A single-use invitation is spent once its redemption is in the log.
    for (const d of [b, c]) await carry(a, d, space);
    for (const d of [b, c]) await carry(d, a, space);
    for (const d of [b, c]) await carry(a, d, space);
    const members = await firstValue(a.members(space));
    // Seniority follows the log's order, in which the two concurrent redemptions fall either way.
    expect(members.members.map((m) => [m.name, m.role]).sort()).toEqual([
      ["Dr. Admin", "admin"],
      ["Nurse B", "writer"],
      ["Reader C", "reader"],
    ]);
    expect(members.members[0]!.name).toBe("Dr. Admin");
    expect(members.invitations.every((i) => i.used === 1)).toBe(true);
    expect((await firstValue(c.members(space))).role).toBe("reader");
    expect(await b.patients.toArray()).toHaveLength(1);

    // The reader is refused at once on its own device, with the typed error.
    const refused = await c.patients.insert({ name: "Eve", notes: "" }, { space }).catch((e) => e);
    expect(refused).toBeInstanceOf(NotPermitted);
    expect(refused.reason).toBe("reader");

    // B writes, then is removed while offline and keeps writing.
    await b.patients.insert({ name: "Before removal", notes: "" }, { space });
    await carry(b, a, space);
    const bPerson = members.members.find((m) => m.name === "Nurse B")!.person;
    await a.remove(space, { person: bPerson });
    await b.patients.insert({ name: "After removal", notes: "" }, { space });
    await a.patients.insert({ name: "Canary-after-rotation", notes: "canary-7f3a" }, { space });
    await carry(a, c, space);
    // B's offline commits after the removal are dropped where they arrive.
    await carry(b, a, space);
    await carry(b, c, space);
    for (const d of [a, c]) {
      const names = (await d.patients.toArray()).map((p) => p.name).sort();
      expect(names).toEqual(["Ada", "Before removal", "Canary-after-rotation"]);
      expect((await d.quarantine(space)).map((q) => q.reason)).toEqual(["membership"]);
    }
    // What A writes after the rotation never opens on B: the file is refused, and B holds no canary.
    const toRemoved = await carry(a, b, space).catch((e) => e);
    expect(toRemoved).toBeInstanceOf(Error);
    expect(await everything(b)).not.toContain("canary-7f3a");
    expect(await everything(b)).not.toContain("Canary-after-rotation");
    // B learned that it was removed: its writes now fail at once.
    const row = await b.replica.dexie.table<SpaceRow>("_spaces").get(space.id);
    expect(row?.readOnly).toBe("removed");
    const late = await b.patients.insert({ name: "Later", notes: "" }, { space }).catch((e) => e);
    expect(late).toBeInstanceOf(NotPermitted);
    // C, the reader, holds the new key and reads the canary.
    expect((await c.patients.toArray()).some((p) => p.notes === "canary-7f3a")).toBe(true);
    // History names the person behind each device, a removed one too.
    const [before] = await a.patients.where("name").equals("Before removal").toArray();
    const h = await a.patients.history(before!.id);
    expect(h.map((e) => [e.person?.name, e.verified])).toEqual([["Nurse B", true]]);
    const after = await firstValue(a.members(space));
    expect(after.members.map((m) => m.name)).toEqual(["Dr. Admin", "Reader C"]);
    expect(after.epoch).not.toBe(0);
  });
});

describe("recovery key", () => {
  it("re-admits a new device as admin after every admin device is lost", async () => {
    const [a, rescuer] = await Promise.all([device("admin"), device("rescuer")]);
    const space = await a.createSpace({ name: "North Clinic" });
    await a.invite(space, { role: "writer", me: "Dr. Admin" });
    const recovery = await a.exportRecoveryKey(space);
    expect(recovery).toContain("#recover=");
    expect((await firstValue(a.members(space))).invitations.find((i) => i.role === "admin")).toMatchObject({
      uses: 1,
      used: 0,
    });
    await a.patients.insert({ name: "Ada", notes: "" }, { space });
    const ops = await logOf(a)();
    const log = async () => ops;
    const bundle = await a.exportBundle({ space });
    await a.close(); // every admin device is gone
    await joinByInvitation(rescuer.replica, recovery, log, "Dr. Admin (recovered)");
    await rescuer.importBundle(bundle);
    const view = await firstValue(rescuer.members(space));
    expect(view.role).toBe("admin");
    expect(await rescuer.patients.toArray()).toHaveLength(1);
    // As an admin it manages members again.
    const next = await rescuer.invite(space, { role: "reader" });
    expect(next).toContain("#invite=");
  });
});

describe("device links", () => {
  it("adds another device of the same person, with that person's role", async () => {
    const [a, b, b2] = await Promise.all([device("admin"), device("phone"), device("tablet")]);
    const space = await a.createSpace({ name: "North Clinic" });
    const toB = await a.invite(space, { role: "writer", me: "Dr. Admin" });
    await joinByInvitation(b.replica, toB, logOf(a), "Nurse B");
    await carry(b, a, space);
    await carry(a, b, space);
    // B, a writer (not an admin), links its own tablet.
    const link = await b.linkDevice(space);
    await joinByInvitation(b2.replica, link, logOf(b), "ignored");
    await carry(b2, b, space);
    await carry(b, a, space);
    const view = await firstValue(a.members(space));
    const nurse = view.members.find((m) => m.name === "Nurse B")!;
    expect(nurse.role).toBe("writer");
    expect(nurse.devices.map((d) => d.device).sort()).toEqual([b.deviceId, b2.deviceId].sort());
    expect(view.members).toHaveLength(2);
    await b2.patients.insert({ name: "From the tablet", notes: "" }, { space });
    await carry(b2, a, space);
    expect((await a.patients.toArray()).map((p) => p.name)).toEqual(["From the tablet"]);
  });
});

describe("live queries over names", () => {
  it("a live query that reads history (names opened with WebCrypto) keeps observing what it reads after", async () => {
    const a = await device("admin");
    const space = await a.createSpace({ name: "North Clinic" });
    await a.invite(space, { role: "writer", me: "Dr. Admin" });
    const id = await a.patients.insert({ name: "Ada", notes: "" }, { space });
    const seen: number[] = [];
    const sub = a
      .live(async () => {
        const h = await a.patients.history(id);
        expect(h[0]!.person?.name).toBe("Dr. Admin");
        return a.patients.count(); // read after the names were opened
      })
      .subscribe({ next: (n) => seen.push(n) });
    cleanup.push(() => sub.unsubscribe());
    const waitCount = (n: number) =>
      new Promise<void>((resolve, reject) => {
        const t0 = Date.now();
        const check = () =>
          seen.includes(n)
            ? resolve()
            : Date.now() - t0 > 10_000
              ? reject(new Error(`no ${n} in ${seen}`))
              : setTimeout(check, 10);
        check();
      });
    await waitCount(1);
    await a.patients.insert({ name: "Bea", notes: "" }, { space });
    await waitCount(2);
  });
});

// Regressions the convergence fuzzer's membership mode found: a reader that joined could write until a
// remote membership commit arrived; a member whose redemption an admin had not seen when it rotated
// never got the new key (sealed to its invitation only); a set-role commit parked behind a missing
// commit was never absorbed; a removal's cut covered a reader's write already refused.
describe("membership races", () => {
  it("refuses a reader's first write right after it joined, before anything else arrived", async () => {
    const [a, r] = await Promise.all([device("admin"), device("reader")]);
    const space = await a.createSpace({ name: "North Clinic" });
    await joinByInvitation(r.replica, await a.invite(space, { role: "reader" }), logOf(a), "Reader");
    await expect(
      r.patients.insert({ name: "Not mine to write", notes: "" }, { space }),
    ).rejects.toMatchObject({
      code: "NotPermitted",
      reason: "reader",
    });
    // Nothing waits to be uploaded that every other replica would refuse.
    expect(
      (await r.exportCommits({}, { spaces: [space.id] })).filter((c) => c.membership === undefined),
    ).toEqual([]);
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

  it("sees its demotion as soon as the set-role commit arrives, even parked behind a missing commit", async () => {
    const [a, b] = await Promise.all([device("admin"), device("writer")]);
    const space = await a.createSpace({ name: "North Clinic" });
    await joinByInvitation(b.replica, await a.invite(space, { role: "writer" }), logOf(a), "Nurse B");
    await carry(b, a, space);
    await carry(a, b, space);
    const person = (await readMembership(a.replica.dexie, space.id))!.deviceOwner.get(b.deviceId);
    await a.patients.insert({ name: "Written just before", notes: "" }, { space });
    await a.setRole(space, person!, "reader");
    const [data, setRole] = (await a.exportCommits(await b.vector([space.id]), { spaces: [space.id] })).slice(
      -2,
    );
    expect(setRole!.membership).toBeDefined();
    // The set-role commit first: it waits for the data commit before it (same device), but its
    // operation counts at once (it is signed on its own), so B is a reader from now on ...
    // (Marked as the sealer marks what it opened from signed bytes: a test shortcut past sealing.)
    await b.applyCommits([markVerifiedMembership({ ...setRole! })], "peer");
    expect((await b.replica.dexie.table<SpaceRow>("_spaces").get(space.id))?.readOnly).toBe("reader");
    await expect(
      b.patients.insert({ name: "Written as a reader", notes: "" }, { space }),
    ).rejects.toMatchObject({
      reason: "reader",
    });
    // ... and when the data commit arrives alone, both apply.
    await b.applyCommits([data!], "peer");
    expect((await b.patients.toArray()).map((p) => p.name)).toContain("Written just before");
    expect((await b.replica.dexie.table<SpaceRow>("_spaces").get(space.id))?.readOnly).toBe("reader");
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
    expect((await readMembership(a.replica.dexie, space.id))!.removedDevices.get(b.deviceId)).toBeLessThan(
      refused.seq,
    );
    // A device that joins afterwards refuses it as well.
    await joinByInvitation(c.replica, await a.invite(space, { role: "writer" }), logOf(a), "Late C");
    await carry(a, c, space);
    await carry(b, c, space);
    expect((await c.patients.toArray()).map((p) => p.name)).not.toContain("Written as a reader");
  });

  it("refuses its own writes at once after removing itself, or demoting itself to reader", async () => {
    const [a, b] = await Promise.all([device("admin"), device("leaver")]);
    const space = await a.createSpace({ name: "North Clinic" });
    await joinByInvitation(b.replica, await a.invite(space, { role: "writer" }), logOf(a), "Nurse B");
    const own = (db: MemberDb) =>
      readMembership(db.replica.dexie, space.id).then((s) => s!.deviceOwner.get(db.deviceId)!);
    await a.setRole(space, await own(a), "reader");
    await expect(a.patients.insert({ name: "x", notes: "" }, { space })).rejects.toMatchObject({
      reason: "reader",
    });
    await b.remove(space, { person: await own(b) });
    await expect(b.patients.insert({ name: "y", notes: "" }, { space })).rejects.toMatchObject({
      reason: "removed",
    });
  });
});

describe("key shares", () => {
  it("a member a concurrent rotation missed gets the key from an admin, and reads what was written under it", async () => {
    const [a, a2, b] = await Promise.all([device("admin"), device("admin-2"), device("joiner")]);
    const space = await a.createSpace({ name: "North Clinic" });
    await joinByInvitation(
      a2.replica,
      await a.invite(space, { role: "admin", me: "Dr. A" }),
      logOf(a),
      "Dr. A2",
    );
    await carry(a2, a, space);
    await carry(a, a2, space);
    // A invites B while A2, not having seen that invitation, rotates the key and writes under it.
    const toB = await a.invite(space, { role: "writer" });
    await rotateKey(a2.replica, space.id);
    await a2.patients.insert({ name: "Under the new key", notes: "" }, { space });
    await joinByInvitation(b.replica, toB, logOf(a), "Nurse B");
    await carry(b, a, space);
    await carry(a2, a, space); // A now sees B's redemption and a rotation that did not seal to B
    const rotation = (await readMembership(a.replica.dexie, space.id))!.rotations.at(-1)!;
    expect(
      (await readMembership(a.replica.dexie, space.id))!.rotations.find((r) => r.epoch === rotation.epoch)!
        .keys[b.deviceId],
    ).toBeDefined(); // shared by A
    await carry(a, b, space).catch(() => undefined); // the share arrives (A2's commit may open only now)
    await carry(a2, b, space).catch(() => undefined);
    await carry(a, b, space);
    expect((await b.patients.toArray()).map((p) => p.name)).toContain("Under the new key");
  });
});
