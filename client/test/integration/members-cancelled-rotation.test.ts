// Issue 13, two admins removing each other offline (PROTOCOL.md 10, rule 3): the junior's removal of
// the senior is cancelled, and with it the rotation the junior made right after. A writer that heard
// the junior first wrote under that rotation's key, which the senior never had. Such keys stay
// shareable: a member holding one seals it to the devices that lack it, so those commits open
// everywhere (convergence fuzzer, members mode, soak seeds 40072 and 40109).
import { describe, expect, it } from "vitest";
import type { SpaceRow } from "../../src/replica/stored-rows.ts";
import { carry, logOf, memberDevice } from "../member-devices.ts";
import { joinByInvitation } from "../../src/spaces/join-by-invitation.ts";
import { readMembership } from "../../src/spaces/membership-log.ts";

describe("a cancelled rotation", () => {
  it("its key reaches the senior admin, who then reads what a writer sealed under it", async () => {
    const [senior, junior, writer] = await Promise.all([
      memberDevice("senior"),
      memberDevice("junior"),
      memberDevice("writer"),
    ]);
    const space = await senior.createSpace({ name: "North Clinic" });
    await joinByInvitation(
      junior.replica,
      await senior.invite(space, { role: "admin", me: "Dr. Senior" }),
      logOf(senior),
      "Dr. Junior",
    );
    await joinByInvitation(
      writer.replica,
      await senior.invite(space, { role: "writer" }),
      logOf(senior),
      "Nurse W",
    );
    for (const d of [junior, writer]) await carry(d, senior, space);
    for (const d of [junior, writer]) await carry(senior, d, space);
    const personOf = async (d: typeof senior) =>
      (await readMembership(senior.replica.dexie, space.id))!.deviceOwner.get(d.deviceId)!;
    const [seniorPerson, juniorPerson] = [await personOf(senior), await personOf(junior)];

    // Offline, each admin removes the other (and rotates); the writer hears the junior first and
    // writes under the junior's new key.
    await junior.remove(space, { person: seniorPerson });
    await senior.remove(space, { person: juniorPerson });
    await carry(junior, writer, space);
    const juniorEpoch = (await readMembership(writer.replica.dexie, space.id))!.epoch;
    expect(juniorEpoch).not.toBe(0);
    await writer.patients.insert({ name: "Under the junior's key", notes: "" }, { space });

    // The senior's removal reaches the writer: the junior's rotation is cancelled, its key shared.
    await carry(senior, writer, space);
    const state = (await readMembership(writer.replica.dexie, space.id))!;
    expect(state.deviceOwner.has(junior.deviceId)).toBe(false);
    expect(state.cancelledRotations.map((r) => r.epoch)).toEqual([juniorEpoch]);
    expect(state.cancelledRotations[0]!.keys[senior.deviceId]).toBeDefined();

    // The senior gets the writer's commits and the share, and reads what was sealed under that key.
    await carry(writer, senior, space);
    const row = await senior.replica.dexie.table<SpaceRow>("_spaces").get(space.id);
    expect(row?.epochKeys?.[juniorEpoch]).toBeDefined();
    expect((await senior.patients.toArray()).map((p) => p.name)).toContain("Under the junior's key");
    // New commits are sealed under the senior's epoch, not the cancelled one.
    expect((await readMembership(senior.replica.dexie, space.id))!.epoch).not.toBe(juniorEpoch);
    expect(row?.epoch).not.toBe(juniorEpoch);
  });
});
