// Issue 13, "the outcome does not depend on who was online": a removal reaches a replica after commits
// of the removed device beyond its cut did, or a second removal with a higher cut reaches a replica
// that refused commits the first one cut. Each replica ends with the same records and the same
// quarantine as one that got everything in the other order (enforceMembership).
import { describe, expect, it } from "vitest";
import type { Space } from "../../src/index.ts";
import { carry, logOf, memberDevice, type MemberDb } from "../member-devices.ts";
import { joinByInvitation } from "../../src/spaces/join-by-invitation.ts";
import { readMembership } from "../../src/spaces/membership-log.ts";

const device = memberDevice;

/** A's space with `others` joined as writers (or admins), everyone holding everyone's commits. */
async function clinic(a: MemberDb, others: MemberDb[], roles: ("writer" | "admin")[] = []): Promise<Space> {
  const space = await a.createSpace({ name: "North Clinic" });
  for (const [i, d] of others.entries())
    await joinByInvitation(
      d.replica,
      await a.invite(space, { role: roles[i] ?? "writer" }),
      logOf(a),
      `Member ${i}`,
    );
  for (const d of others) await carry(d, a, space);
  for (const d of others) await carry(a, d, space);
  return space;
}

const personOf = async (db: MemberDb, space: Space, of: MemberDb) =>
  (await readMembership(db.replica.dexie, space.id))!.deviceOwner.get(of.deviceId)!;

/** What a replica shows and refused, comparable across replicas. */
async function outcome(db: MemberDb, space: Space) {
  const rows = (await db.patients.toArray()).map((p) => `${p.name}|${p.notes}`).sort();
  const quarantine = (await db.quarantine(space)).map((q) => `${q.id}:${q.reason}`).sort();
  return { rows, quarantine };
}

describe("late cuts", () => {
  it("takes out a removed device's commits applied before the removal arrived, with what built on them", async () => {
    const [a, b, c] = await Promise.all([device("admin"), device("removed"), device("late")]);
    const space = await clinic(a, [b, c]);
    const shared = await b.patients.insert({ name: "Shared", notes: "" }, { space });
    await carry(b, a, space);
    await carry(b, c, space);

    // A removes B. B has not heard, keeps writing; its commits reach C before the removal does.
    await a.remove(space, { person: await personOf(a, space, b) });
    await b.patients.insert({ name: "After removal", notes: "" }, { space });
    await b.patients.update(shared, (d) => {
      d.name = "Renamed by B late";
    });
    await carry(b, c, space);
    expect((await c.patients.toArray()).map((p) => p.name).sort()).toEqual([
      "After removal",
      "Renamed by B late",
    ]);
    // C builds on B's late edit, and writes something of its own.
    await c.patients.update(shared, (d) => {
      d.notes = "C on top of B";
    });
    await c.patients.insert({ name: "C alone", notes: "" }, { space });

    // The removal reaches C: B's late commits go, and so does C's edit that depended on them.
    await carry(a, c, space);
    const atC = await outcome(c, space);
    expect(atC.rows).toEqual(["C alone|", "Shared|"]);
    expect(atC.quarantine.map((q) => q.split(":")[1]).sort()).toEqual([
      "dependency",
      "membership",
      "membership",
    ]);
    expect((await c.patients.history(shared)).map((e) => e.device)).toEqual([b.deviceId]);

    // A gets everything in the other order (the removal first): the same outcome.
    await carry(c, a, space);
    expect(await outcome(a, space)).toEqual(atC);
    // And C still writes on the shared record, from its rebuilt state.
    await c.patients.update(shared, (d) => {
      d.notes = "C again";
    });
    await carry(c, a, space);
    expect((await a.patients.get(shared))?.notes).toBe("C again");
  });

  it("brings back a commit the log allows again once the commit it builds on arrives", async () => {
    const [a, b, c, d] = await Promise.all([
      device("admin"),
      device("demoted"),
      device("observer"),
      device("other"),
    ]);
    const space = await clinic(a, [b, c, d]);
    const shared = await a.patients.insert({ name: "Shared", notes: "" }, { space });
    for (const x of [b, c, d]) await carry(a, x, space);
    const person = await personOf(a, space, b);

    // A makes B a reader. B, not knowing, edits on top of D's edit, which C has not received.
    await a.setRole(space, person, "reader");
    await d.patients.update(shared, (p) => {
      p.name = "Renamed by D";
    });
    await carry(d, b, space);
    await b.patients.update(shared, (p) => {
      p.notes = "B on top of D";
    });
    // C hears the demotion, then B's edit (refused: a reader's) but not D's.
    await carry(a, c, space);
    const withoutD = await c.vector([space.id]);
    withoutD[space.id] = { ...withoutD[space.id], [d.deviceId]: Number.MAX_SAFE_INTEGER };
    await c.importBundle(await b.exportBundle({ space, since: withoutD }));
    expect((await c.quarantine(space)).map((q) => q.reason)).toEqual(["membership"]);

    // A makes B a writer again: B's edit counts now, but it builds on D's, which C still lacks.
    await a.setRole(space, person, "writer");
    await carry(a, c, space);
    expect((await c.quarantine(space)).map((q) => q.reason)).toEqual(["membership"]);
    // D's edit arrives: B's comes back with it (soak seed 70242: it stayed out for good).
    await carry(d, c, space);
    expect(await c.quarantine(space)).toEqual([]);
    expect(await c.patients.get(shared)).toMatchObject({ name: "Renamed by D", notes: "B on top of D" });
    // Everyone else agrees.
    for (const x of [a, b, d]) await carry(c, x, space);
    for (const x of [a, b, d]) await carry(x, c, space);
    for (const x of [a, b, d]) expect(await outcome(x, space)).toEqual(await outcome(c, space));
  });

  it("brings back commits a lower cut refused once a removal with a higher cut arrives", async () => {
    const [a1, a2, b, c] = await Promise.all([
      device("admin1"),
      device("admin2"),
      device("removed"),
      device("late"),
    ]);
    const space = await clinic(a1, [a2, b, c], ["admin", "writer", "writer"]);
    const person = await personOf(a1, space, b);
    // A1 removes B having seen none of B's writes; A2 removes B after seeing two of them.
    await a1.remove(space, { person });
    await b.patients.insert({ name: "B one", notes: "" }, { space });
    await b.patients.insert({ name: "B two", notes: "" }, { space });
    await carry(b, a2, space);
    await a2.remove(space, { person });
    // C hears A1's removal first, then B's writes (refused: beyond that cut), then A2's removal.
    await carry(a1, c, space);
    await carry(b, c, space);
    expect((await c.quarantine(space)).map((q) => q.reason)).toEqual(["membership", "membership"]);
    await carry(a2, c, space);
    // The highest cut counts: B's two writes are within it, and apply.
    const atC = await outcome(c, space);
    expect(atC).toEqual({ rows: ["B one|", "B two|"], quarantine: [] });
    // A1 hears in yet another order and agrees.
    await carry(a2, a1, space);
    await carry(c, a1, space);
    expect(await outcome(a1, space)).toEqual(atC);
  });
});
