import { describe, expect, it } from "vitest";
import type { DeviceIdentity } from "../identity/device-identity.ts";
import { identityFromSeed } from "../identity/identity-from-seed.ts";
import { toHex } from "../protocol/hex.ts";
import { seededRandom } from "../testing/seeded-random.ts";
import { signingKeyFromSeed } from "../identity/identity-from-seed.ts";
import {
  opId,
  redemptionProof,
  signOp,
  verifyOp,
  type DeviceKeys,
  type MembershipAction,
  type MembershipOp,
  type Role,
} from "./membership-op.ts";
import { resolveMembership, type MembershipState } from "./resolve-membership.ts";

const space = "5a".repeat(16);
const ids = new Map<number, Promise<DeviceIdentity>>();
/** Device `n`'s identity (reproducible). */
function dev(n: number): Promise<DeviceIdentity> {
  if (!ids.has(n)) {
    const seed = new Uint8Array(32);
    seed[0] = n;
    seed[1] = 0x5e;
    ids.set(n, identityFromSeed(seed));
  }
  return ids.get(n)!;
}
const keys = (d: DeviceIdentity): DeviceKeys => ({
  device: d.device,
  signingKey: toHex(d.signingPublic),
  agreementKey: toHex(d.agreementPublic),
});

type Secret = { privateKey: CryptoKey; publicKey: Uint8Array };

/** A redemption of `secret`'s invitation by `who` as `person`, signed and proved; not yet in a log. */
async function redeemOp(who: DeviceIdentity, secret: Secret, person: string, parents: string[], at: number) {
  return signOp(who, {
    space,
    parents,
    at,
    action: {
      kind: "redeem",
      invitation: toHex(secret.publicKey),
      person,
      name: person,
      device: keys(who),
      proof: await redemptionProof(secret.privateKey, space, who.device),
    },
  });
}

/** A log under construction: ops by id, and the ops' ids in the order written. */
class Log {
  readonly ops = new Map<string, MembershipOp>();
  async write(author: DeviceIdentity, action: MembershipAction, parents?: string[]): Promise<string> {
    const op = await signOp(author, {
      space,
      parents: parents ?? this.state().heads,
      at: 1_700_000_000_000,
      action,
    });
    expect(await verifyOp(op)).toBe(true);
    const id = await opId(op);
    this.ops.set(id, op);
    return id;
  }
  /** Adds an op written elsewhere (a redemption); returns its id. */
  async add(op: MembershipOp): Promise<string> {
    expect(await verifyOp(op)).toBe(true);
    const id = await opId(op);
    this.ops.set(id, op);
    return id;
  }
  state(): MembershipState {
    return this.ops.size === 0
      ? ({ heads: [] } as unknown as MembershipState)
      : resolveMembership(this.ops, this.creatorKey);
  }
  creatorKey = "";
}

/** A space made by device 1 (Ada, admin) with Ben (device 2) as `role`. */
async function clinic(role: Role = "admin") {
  const log = new Log();
  const ada = await dev(1);
  const ben = await dev(2);
  log.creatorKey = toHex(ada.signingPublic);
  const created = await log.write(ada, { kind: "create", person: "ada", name: "Ada", device: keys(ada) });
  const added = await log.write(ada, {
    kind: "add-person",
    person: "ben",
    name: "Ben",
    role,
    device: keys(ben),
  });
  return { log, ada, ben, created, added };
}

const roles = (s: MembershipState) =>
  Object.fromEntries([...s.members.values()].map((m) => [m.person, m.role]));

describe("membership log", () => {
  it("computes members, roles and devices; refuses what a non-admin may not do", async () => {
    const { log, ada, ben } = await clinic("writer");
    const cy = await dev(3);
    const benPhone = await dev(4);
    await log.write(ada, { kind: "add-person", person: "cy", name: "Cy", role: "reader", device: keys(cy) });
    await log.write(ben, { kind: "add-device", person: "ben", device: keys(benPhone) });
    // A writer may not add people or change roles.
    const sneaky = await log.write(ben, { kind: "set-role", person: "ben", role: "admin" });
    const s = log.state();
    expect(roles(s)).toEqual({ ada: "admin", ben: "writer", cy: "reader" });
    expect(s.members.get("ben")!.devices.map((d) => d.device)).toEqual([ben.device, benPhone.device]);
    expect(s.deviceOwner.get(benPhone.device)).toBe("ben");
    expect(s.refused.get(sneaky)).toBe("unauthorized");
  });

  it("starts only from its creator's create: a forged root or an op by a stranger does not count", async () => {
    const { log } = await clinic();
    const mallory = await dev(9);
    const forgedRoot = await log.write(
      mallory,
      { kind: "create", person: "m", name: "M", device: keys(mallory) },
      [],
    );
    const stranger = await log.write(mallory, { kind: "set-role", person: "ben", role: "reader" });
    const s = log.state();
    expect(s.refused.get(forgedRoot)).toBe("not-the-creator");
    expect(s.refused.get(stranger)).toBe("unauthorized");
    expect(roles(s)).toEqual({ ada: "admin", ben: "admin" });
  });

  it("refuses a tampered op and one adding a device under another's key", async () => {
    const { log, ada } = await clinic();
    const [first] = [...log.ops.values()];
    expect(await verifyOp({ ...first!, at: first!.at + 1 })).toBe(false);
    const x = await dev(5);
    const y = await dev(6);
    const op = await signOp(ada, {
      space,
      parents: log.state().heads,
      at: 0,
      action: {
        kind: "add-person",
        person: "x",
        name: "X",
        role: "writer",
        device: { ...keys(x), device: y.device },
      },
    });
    expect(await verifyOp(op)).toBe(false);
  });

  it("reads hold requests and receipts in both forms and refuses malformed vectors", async () => {
    const ada = await dev(1);
    const d = "ab".repeat(16);
    const sign = (action: MembershipAction) => signOp(ada, { space, parents: [], at: 0, action });
    const good: MembershipAction[] = [
      { kind: "hold-request", vector: { [d]: 3, [ada.device]: 1 } },
      { kind: "hold-request", seq: 2 },
      { kind: "hold-request", seq: 2, device: d },
      { kind: "hold", vector: { [d]: 3 } },
      { kind: "hold", device: d, seq: 3 },
    ];
    for (const action of good) expect(await verifyOp(await sign(action))).toBe(true);
    const bad = [
      { kind: "hold-request", vector: {} },
      { kind: "hold-request", vector: { [d]: 0 } },
      { kind: "hold", vector: { "not-a-device": 3 } },
      { kind: "hold", vector: { [d]: -2 } },
      { kind: "hold", vector: [3] },
      {
        kind: "hold",
        vector: Object.fromEntries(
          Array.from({ length: 4097 }, (_, i) => [i.toString(16).padStart(32, "0"), 1]),
        ),
      },
    ] as unknown as MembershipAction[];
    for (const action of bad) expect(await verifyOp(await sign(action))).toBe(false);
  });

  it("two admins removing each other at once: the more senior stays", async () => {
    const { log, ada, ben, added } = await clinic("admin");
    // Both write from the same past (after Ben was added), not knowing of each other's removal.
    await log.write(ben, { kind: "remove", person: "ada", cut: {} }, [added]);
    await log.write(ada, { kind: "remove", person: "ben", cut: { [ben.device]: 7 } }, [added]);
    const s = log.state();
    expect(roles(s)).toEqual({ ada: "admin" });
    expect(s.removedDevices.get(ben.device)).toBe(7);
    expect(s.deviceOwner.has(ada.device)).toBe(true);
  });

  it("the senior admin keeps its authority after seeing the junior's refused removal of it", async () => {
    const { log, ada, ben, added } = await clinic("admin");
    const byBen = await log.write(ben, { kind: "remove", person: "ada", cut: {} }, [added]);
    const byAda = await log.write(ada, { kind: "remove", person: "ben", cut: {} }, [added]);
    // Ada hears of Ben's removal of her, then adds Cy: Ben's removal is refused (Ada is senior), so it
    // takes nothing from what she writes after it (membership soak seed 92057: her key shares kept
    // being refused, and she kept writing them).
    const cy = await dev(3);
    const addCy = await log.write(
      ada,
      { kind: "add-person", person: "cy", name: "Cy", role: "writer", device: keys(cy) },
      [byBen, byAda].sort(),
    );
    const s = log.state();
    expect(s.refused.get(byBen)).toBe("removed-concurrently");
    expect(s.refused.has(addCy)).toBe(false);
    expect(roles(s)).toEqual({ ada: "admin", cy: "writer" });
  });

  it("what a member does concurrently with their removal does not count, nor what rests on it", async () => {
    const { log, ada, ben, added } = await clinic("admin");
    const cy = await dev(3);
    const dee = await dev(7);
    // Ben adds Cy while Ada removes Ben; Cy then adds Dee (as an admin Ben made her).
    const addCy = await log.write(
      ben,
      { kind: "add-person", person: "cy", name: "Cy", role: "admin", device: keys(cy) },
      [added],
    );
    const addDee = await log.write(
      cy,
      { kind: "add-person", person: "dee", name: "Dee", role: "writer", device: keys(dee) },
      [addCy],
    );
    await log.write(ada, { kind: "remove", person: "ben", cut: {} }, [added]);
    const s = log.state();
    expect(roles(s)).toEqual({ ada: "admin" });
    expect(s.refused.get(addCy)).toBe("removed-concurrently");
    expect(s.refused.get(addDee)).toBe("unauthorized");
  });

  it("says who likely lacks a counted rotation's key: left out of it, and not added after it", async () => {
    const { log, ada, ben } = await clinic("admin");
    const cy = await dev(3);
    const dee = await dev(7);
    const eve = await dev(8);
    await log.write(ada, { kind: "add-person", person: "cy", name: "Cy", role: "writer", device: keys(cy) });
    const addDee = await log.write(ada, {
      kind: "add-person",
      person: "dee",
      name: "Dee",
      role: "admin",
      device: keys(dee),
    });
    // Ben removes Cy while Ada removes Ben: Ben's removal does not count, and Cy stays. Dee, who heard
    // Ben's removal of Cy first, rotates the key leaving Cy out: that rotation counts.
    const benRemovesCy = await log.write(ben, { kind: "remove", person: "cy", cut: {} }, [addDee]);
    await log.write(ada, { kind: "remove", person: "ben", cut: {} }, [addDee]);
    const rotate = await log.write(
      dee,
      { kind: "rotate", epoch: 77, keys: { [ada.device]: "aa", [dee.device]: "bb" } },
      [benRemovesCy],
    );
    // Eve is added after the rotation: she got its key with her key set.
    await log.write(ada, {
      kind: "add-person",
      person: "eve",
      name: "Eve",
      role: "writer",
      device: keys(eve),
    });
    let s = log.state();
    expect(s.refused.get(benRemovesCy)).toBe("removed-concurrently");
    expect(s.refused.has(rotate)).toBe(false);
    expect(roles(s)).toEqual({ ada: "admin", cy: "writer", dee: "admin", eve: "writer" });
    expect([...s.keyNeeds]).toEqual([[77, [cy.device]]]);
    // A share of the epoch to Cy settles it.
    await log.write(ada, { kind: "share", epoch: 77, keys: { [cy.device]: "cc" } });
    s = log.state();
    expect(s.keyNeeds.size).toBe(0);

    // Fay redeems an invitation while Ada rotates (sealing to the invitation too): Fay's redemption did
    // not see the rotation, so she lacks its key (soak seed 140022).
    const fay = await dev(9);
    const secret = await signingKeyFromSeed(new Uint8Array(32).fill(44));
    const invitation = toHex(secret.publicKey);
    const invite = await log.write(ada, {
      kind: "invite",
      invitation,
      role: "writer",
      expires: 2_000_000_000_000,
      uses: 1,
    });
    await log.add(await redeemOp(fay, secret, "fay", [invite], 1_000));
    await log.write(ada, { kind: "rotate", epoch: 78, keys: { [ada.device]: "aa", [invitation]: "dd" } }, [
      invite,
    ]);
    s = log.state();
    expect(roles(s).fay).toBe("writer");
    expect(s.keyNeeds.get(78)).toEqual([cy.device, dee.device, eve.device, fay.device].sort());
  });

  it("a removal wins over a concurrent grant to the same person", async () => {
    const { log, ada, ben, added } = await clinic("writer");
    const eve = await dev(8);
    const carl = await dev(3);
    const addCarl = await log.write(
      ada,
      { kind: "add-person", person: "carl", name: "Carl", role: "admin", device: keys(carl) },
      [added],
    );
    // Carl (admin) promotes Ben while Ada removes Ben; Ada also adds Eve after the removal.
    const promote = await log.write(carl, { kind: "set-role", person: "ben", role: "admin" }, [addCarl]);
    const removal = await log.write(ada, { kind: "remove", person: "ben", cut: {} }, [addCarl]);
    await log.write(
      ada,
      { kind: "add-person", person: "eve", name: "Eve", role: "reader", device: keys(eve) },
      [removal],
    );
    const s = log.state();
    expect(s.refused.get(promote)).toBe("concurrent-with-removal");
    expect(roles(s)).toEqual({ ada: "admin", carl: "admin", eve: "reader" });
    expect(s.removedDevices.has(ben.device)).toBe(true);
  });

  it("a member may leave and remove a device of their own; a removed device never comes back", async () => {
    const { log, ben } = await clinic("writer");
    const phone = await dev(4);
    await log.write(ben, { kind: "add-device", person: "ben", device: keys(phone) });
    await log.write(phone, { kind: "remove", person: "ben", device: ben.device, cut: { [ben.device]: 3 } });
    let s = log.state();
    expect(s.members.get("ben")!.devices.map((d) => d.device)).toEqual([phone.device]);
    expect(s.removedDevices.get(ben.device)).toBe(3);
    const back = await log.write(phone, { kind: "add-device", person: "ben", device: keys(ben) });
    s = log.state();
    expect(s.refused.get(back)).toBe("unauthorized");
    await log.write(phone, { kind: "remove", person: "ben", cut: {} });
    expect(roles(log.state())).toEqual({ ada: "admin" });
  });

  it("an op whose causal past is not all here waits", async () => {
    const { log, ada } = await clinic();
    const ops = new Map(log.ops);
    const x = await dev(5);
    const later = await log.write(ada, {
      kind: "add-person",
      person: "x",
      name: "X",
      role: "reader",
      device: keys(x),
    });
    const after = await log.write(ada, { kind: "set-role", person: "x", role: "writer" });
    ops.set(after, log.ops.get(after)!);
    const s = resolveMembership(ops, log.creatorKey);
    expect(s.waiting).toEqual([after]);
    expect(s.members.has("x")).toBe(false);
    expect(later).toBeDefined();
  });

  it("an invitation admits as many new people as its uses, before it expires, unless revoked", async () => {
    const { log, ada, ben, added } = await clinic("writer");
    const secret = await signingKeyFromSeed(new Uint8Array(32).fill(42));
    const invitation = toHex(secret.publicKey);
    const invite = await log.write(
      ada,
      { kind: "invite", invitation, role: "writer", expires: 2_000, uses: 1 },
      [added],
    );
    const redeem = async (who: DeviceIdentity, person: string, parents: string[], at = 1_000) =>
      log.add(await redeemOp(who, secret, person, parents, at));
    // Two devices redeem the single-use link at once: exactly one becomes a member, the same one
    // whatever the order the replicas learn of them.
    const x = await dev(20);
    const y = await dev(21);
    const rx = await redeem(x, "xena", [invite]);
    const ry = await redeem(y, "yuri", [invite]);
    let s = log.state();
    const [winner, loser] = rx < ry ? [rx, ry] : [ry, rx];
    expect(s.order).toContain(winner);
    expect(s.refused.get(loser)).toBe("invitation-used");
    expect([...s.members.keys()].sort()).toEqual(["ada", "ben", rx < ry ? "xena" : "yuri"].sort());
    expect(s.members.get(rx < ry ? "xena" : "yuri")!.role).toBe("writer");
    // A later redemption too: used.
    const z = await dev(22);
    const rz = await redeem(z, "zoe", s.heads);
    expect(log.state().refused.get(rz)).toBe("invitation-used");

    // A second invitation, two uses: one redemption after its expiry, one concurrent with its revocation.
    const secret2 = await signingKeyFromSeed(new Uint8Array(32).fill(43));
    const invitation2 = toHex(secret2.publicKey);
    const invite2 = await log.write(ada, {
      kind: "invite",
      invitation: invitation2,
      role: "reader",
      expires: 5_000,
      uses: 2,
    });
    const lateId = await log.add(await redeemOp(await dev(23), secret2, "late", [invite2], 5_001));
    const revoke = await log.write(ada, { kind: "revoke-invite", invitation: invitation2 }, [invite2]);
    const racingId = await log.add(await redeemOp(await dev(24), secret2, "racer", [invite2], 4_000));
    s = log.state();
    expect(s.refused.get(lateId)).toBe("invitation-expired");
    expect(s.refused.get(racingId)).toBe("invitation-revoked");
    expect(s.order).toContain(revoke);
    // A writer cannot invite; a proof made for another device does not verify.
    const byWriter = await log.write(ben, {
      kind: "invite",
      invitation: toHex(new Uint8Array(32).fill(1)),
      role: "admin",
      expires: 9,
      uses: 1,
    });
    expect(log.state().refused.get(byWriter)).toBe("unauthorized");
    const stolen = await signOp(await dev(25), {
      space,
      parents: [invite2],
      at: 1,
      action: {
        kind: "redeem",
        invitation: invitation2,
        person: "thief",
        name: "Thief",
        device: keys(await dev(25)),
        proof: await redemptionProof(secret2.privateKey, space, (await dev(24)).device),
      },
    });
    expect(await verifyOp(stolen)).toBe(false);
  });

  // Convergence: replicas that hold the same operations compute the same state, whatever the order the
  // operations reached them in. Seeded: a failure prints its seed.
  const SEEDS = Array.from({ length: Number(process.env.MEMBERSHIP_SEEDS ?? 20) }, (_, i) => i + 1);
  const seen = new Map<string, number>();
  it.each(SEEDS)("converges whatever the arrival order (seed %i)", async (seed) => {
    const { log, expected } = await randomLog(seed);
    for (const reason of expected.refused.values()) seen.set(reason, (seen.get(reason) ?? 0) + 1);
    seen.set("counted", (seen.get("counted") ?? 0) + expected.order.length);
    expect(expected.order.length, `seed ${seed}: a log with something in it`).toBeGreaterThanOrEqual(1);
    const rnd = seededRandom(seed * 7919);
    for (let shuffle = 0; shuffle < 5; shuffle++) {
      const entries = [...log.ops];
      for (let i = entries.length - 1; i > 0; i--) {
        const j = rnd.int(i + 1);
        [entries[i], entries[j]] = [entries[j]!, entries[i]!];
      }
      expect(summary(resolveMembership(new Map(entries), log.creatorKey)), `seed ${seed}`).toEqual(
        summary(expected),
      );
    }
    // Every op that counts was allowed in its own causal past: resolving just that past keeps it.
    for (const id of expected.order) {
      const past = new Map([...log.ops].filter(([k]) => k === id || ancestorsOf(log.ops, id).has(k)));
      expect(resolveMembership(past, log.creatorKey).order.includes(id), `seed ${seed}, op ${id}`).toBe(true);
    }
  });

  it("the seeded logs exercised every rule", () => {
    console.log("membership fuzz:", JSON.stringify(Object.fromEntries(seen)));
    for (const what of [
      "counted",
      "unauthorized",
      "removed-concurrently",
      "concurrent-with-removal",
      "invitation-used",
      "invitation-expired",
    ])
      expect(seen.get(what) ?? 0, `${what} in seeds ${SEEDS.join(",")}`).toBeGreaterThan(0);
  });
});

/** The parts of a state replicas must agree on. */
function summary(s: MembershipState) {
  return {
    members: [...s.members.values()].map((m) => [m.person, m.role, m.devices.map((d) => d.device)]).sort(),
    removed: [...s.removedDevices].sort(),
    order: s.order,
    refused: [...s.refused].sort(),
  };
}

/**
 * A log written by several replicas, each from its own view: mostly the whole log so far, sometimes an
 * older prefix (so ops are concurrent). Authors are mostly members allowed to act (admins for
 * admin work), sometimes not, so every rule is met.
 */
async function randomLog(seed: number): Promise<{ log: Log; expected: MembershipState }> {
  const rnd = seededRandom(seed);
  const log = new Log();
  const creator = await dev(100);
  log.creatorKey = toHex(creator.signingPublic);
  await log.write(creator, { kind: "create", person: "p0", name: "P0", device: keys(creator) });
  const written: string[] = [...log.ops.keys()];
  let fresh = 101;
  const everyone: DeviceIdentity[] = [creator];
  const invitations: Secret[] = [];
  for (let step = 0; step < 30; step++) {
    const view = written.slice(0, written.length - rnd.int(Math.min(4, written.length)));
    const past = resolveMembership(new Map(view.map((id) => [id, log.ops.get(id)!])), log.creatorKey);
    // Members with a device to write from (a member may have removed all of theirs).
    const members = [...past.members.values()].filter((m) => m.devices.length > 0);
    const admins = members.filter((m) => m.role === "admin");
    const pool = rnd.next() < 0.85 && admins.length > 0 ? admins : members;
    const byDevice = new Map<string, DeviceIdentity>(everyone.map((d) => [d.device, d]));
    const authorMember = pool.length > 0 ? rnd.pick(pool) : undefined;
    const author =
      authorMember && rnd.next() < 0.9
        ? byDevice.get(rnd.pick(authorMember.devices).device)!
        : rnd.pick(everyone); // now and then someone without the right
    const people = ["p0", "p1", "p2", "p3", "p4"];
    const person = rnd.pick(people);
    const role = rnd.pick(["admin", "writer", "reader"] as const);
    const roll = rnd.next();
    let action: MembershipAction;
    if (roll < 0.12) {
      // An admin's invitation (one or two uses, an expiry the redemptions fall on both sides of).
      const secret = await signingKeyFromSeed(Uint8Array.from({ length: 32 }, () => rnd.int(256)));
      invitations.push(secret);
      action = {
        kind: "invite",
        invitation: toHex(secret.publicKey),
        role,
        expires: 500 + rnd.int(1000),
        uses: 1 + rnd.int(2),
      };
    } else if (roll < 0.24 && invitations.length > 0) {
      // A new device redeems a known invitation (which may not be in its view yet: then it waits or
      // is refused as unknown), at a time before or after the expiry.
      const secret = rnd.pick(invitations);
      const d = await dev(fresh++);
      everyone.push(d);
      const id = await log.add(await redeemOp(d, secret, `r${step}`, past.heads, rnd.int(2000)));
      written.push(id);
      continue;
    } else if (roll < 0.3 && invitations.length > 0) {
      action = { kind: "revoke-invite", invitation: toHex(rnd.pick(invitations).publicKey) };
    } else if (roll < 0.45 || !past.members.has(person)) {
      const d = await dev(fresh++);
      everyone.push(d);
      action = past.members.has(person)
        ? { kind: "add-device", person, device: keys(d) }
        : { kind: "add-person", person, name: person, role, device: keys(d) };
    } else if (roll < 0.65) {
      action = { kind: "set-role", person, role };
    } else {
      const devices = past.members.get(person)!.devices;
      const one = rnd.next() < 0.3 && devices.length > 1 ? rnd.pick(devices).device : undefined;
      action = {
        kind: "remove",
        person,
        ...(one ? { device: one } : {}),
        cut: Object.fromEntries(devices.map((d) => [d.device, rnd.int(20)])),
      };
    }
    written.push(await log.write(author, action, past.heads));
  }
  return { log, expected: log.state() };
}

function ancestorsOf(ops: ReadonlyMap<string, MembershipOp>, id: string): Set<string> {
  const out = new Set<string>();
  const stack = [...ops.get(id)!.parents];
  while (stack.length > 0) {
    const p = stack.pop()!;
    if (out.has(p)) continue;
    out.add(p);
    stack.push(...(ops.get(p)?.parents ?? []));
  }
  return out;
}
