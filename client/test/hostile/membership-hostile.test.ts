// Issue 13, the refusals: a commit by a device that is not a member, a membership operation a member
// had no right to write, a forged operation, an invitation redeemed after its expiry or revocation.
// Each is refused with its typed error where it arrives, and nothing else is affected.
import { describe, expect, it } from "vitest";
import { AccessDenied, type CommitQuarantined } from "../../src/index.ts";
import type { SpaceRow } from "../../src/replica/stored-rows.ts";
import { canonicalJson } from "../../src/members/membership-op.ts";
import { carry, logOf, memberDevice, type MemberDb } from "../member-devices.ts";
import { joinByInvitation } from "../../src/spaces/join-by-invitation.ts";
import { appendMembershipOp, readMembership } from "../../src/spaces/membership-log.ts";
import { SpaceSealer } from "../../src/sealing/sealer.ts";
import { DecryptError } from "../../src/errors.ts";
import { signOp } from "../../src/members/membership-op.ts";
import { signBytes, SIGNING_LABELS } from "../../src/identity/signing.ts";
import { sha256 } from "../../src/crypto/sha256.ts";
import {
  appendSignature,
  COMMIT_FORMAT_VERSION,
  fromHex,
  MEMBERSHIP_EPOCH,
  unsignedCommit,
} from "../../src/protocol/index.ts";

const device = memberDevice;
type Db = MemberDb;

/** A clinic whose admin A invited writer B; both hold each other's commits. */
async function clinic() {
  const [a, b] = await Promise.all([device("admin"), device("writer")]);
  const space = await a.createSpace({ name: "North Clinic" });
  const link = await a.invite(space, { role: "writer", me: "Admin" });
  await joinByInvitation(b.replica, link, logOf(a), "Writer B");
  await carry(b, a, space);
  await carry(a, b, space);
  return { a, b, space };
}

describe("membership refusals", () => {
  it("a commit by a device that holds the key but is not a member is quarantined, the rest applies", async () => {
    const [a, mallory] = await Promise.all([device("admin"), device("mallory")]);
    const space = await a.createSpace({ name: "North Clinic" });
    // Mallory got the old key link before the space had members, so she holds the key.
    await mallory.join(await a.invite(space, "https://app.example/"));
    await a.invite(space, { role: "writer" });
    await a.patients.insert({ name: "Ada", notes: "" }, { space });
    await carry(a, mallory, space);
    // Her own client, having the log now, refuses her at once; a hostile client skips that check.
    const own = await mallory.patients.insert({ name: "x", notes: "" }, { space }).catch((e) => e);
    expect(own.reason).toBe("not-a-member");
    const rows = mallory.replica.dexie.table<SpaceRow>("_spaces");
    const { readOnly: _dropped, ...hostile } = (await rows.get(space.id))!;
    await rows.put(hostile);
    await mallory.patients.insert({ name: "Mallory was here", notes: "" }, { space });
    const report = await carry(mallory, a, space);
    expect(report.rejected.map((r) => [r.error.code, (r.error as CommitQuarantined).reason])).toEqual([
      ["CommitQuarantined", "membership"],
    ]);
    expect((await a.patients.toArray()).map((p) => p.name)).toEqual(["Ada"]);
    expect((await a.quarantine(space))[0]!.message).toContain("not a member");
    await a.patients.insert({ name: "Still writing", notes: "" }, { space });
    expect(await a.patients.count()).toBe(2);
  });

  it("a membership operation by a writer (promoting itself to admin) is kept but counts for nothing", async () => {
    const { a, b, space } = await clinic();
    const before = (await readMembership(a.replica.dexie, space.id))!;
    const bPerson = before.deviceOwner.get(b.deviceId)!;
    // B's client would refuse it (NotPermitted); a hostile B writes it anyway, validly signed.
    await appendMembershipOp(b.replica, space.id, { kind: "set-role", person: bPerson, role: "admin" });
    await appendMembershipOp(b.replica, space.id, {
      kind: "remove",
      person: before.deviceOwner.get(a.deviceId)!,
      cut: {},
    });
    await carry(b, a, space);
    const after = (await readMembership(a.replica.dexie, space.id))!;
    expect(after.members.get(bPerson)!.role).toBe("writer");
    expect(after.members.has(before.deviceOwner.get(a.deviceId)!)).toBe(true);
    expect([...after.refused.values()]).toEqual(["unauthorized", "unauthorized"]);
    // B still writes as a writer: refusing its operations did not touch its rights or its data.
    await b.patients.insert({ name: "From B", notes: "" }, { space });
    await carry(b, a, space);
    expect((await a.patients.toArray()).map((p) => p.name)).toEqual(["From B"]);
  });

  it("a forged membership commit (an operation not signed by its author) does not open", async () => {
    const { a, b, space } = await clinic();
    const row = (await b.replica.dexie.table<SpaceRow>("_spaces").get(space.id))!;
    const state = (await readMembership(b.replica.dexie, space.id))!;
    // An operation claiming to be A's, signed by B: B can make the commit (as itself) but not the op.
    const op = await signOp(b.replica.identity!, {
      space: space.id,
      parents: state.heads,
      at: Date.now(),
      action: { kind: "set-role", person: state.deviceOwner.get(b.deviceId)!, role: "admin" },
    });
    const forged = { ...op, author: a.deviceId };
    const vector = (await b.vector([space.id]))[space.id]![b.deviceId]!;
    const prev = (
      await new SpaceSealer(b.replica.dexie, space.id, row.key).sealedRange(b.deviceId, vector, vector)
    )[0]!;
    const identity = b.replica.identity!;
    const unsigned = unsignedCommit(
      {
        version: COMMIT_FORMAT_VERSION,
        space: fromHex(space.id, 16),
        device: fromHex(b.deviceId, 16),
        seq: vector + 1,
        epoch: MEMBERSHIP_EPOCH,
        prevHash: await sha256(prev),
        author: identity.signingPublic,
      },
      new TextEncoder().encode(canonicalJson(forged)),
    );
    const bytes = appendSignature(
      unsigned,
      await signBytes(identity.signingKey, SIGNING_LABELS.commit, unsigned),
    );
    await expect(new SpaceSealer(a.replica.dexie, space.id, row.key).open(bytes)).rejects.toBeInstanceOf(
      DecryptError,
    );
  });

  it("an invitation redeemed after its expiry or its revocation does not make a member", async () => {
    const [a, late, revoked] = await Promise.all([device("admin"), device("late"), device("revoked")]);
    const space = await a.createSpace({ name: "North Clinic" });
    const expired = await a.invite(space, { role: "writer", expiresIn: 1 });
    await new Promise((r) => setTimeout(r, 5)); // the expiry is a time: let it pass
    const refusal = await joinByInvitation(late.replica, expired, logOf(a), "Late").catch((e) => e);
    expect(refusal).toBeInstanceOf(AccessDenied);
    expect(refusal.reason).toBe("invitation-expired");
    expect(await late.spaces()).toHaveLength(1); // only its private space: nothing was kept

    // Revoked after the link went out but before its redemption reached anyone: the revocation wins.
    const link = await a.invite(space, { role: "writer" });
    await joinByInvitation(revoked.replica, link, logOf(a), "Revoked");
    const invitation = (await readMembership(a.replica.dexie, space.id))!;
    await a.revokeInvitation(space, [...invitation.invitations.keys()].at(-1)!);
    await revoked.patients.insert({ name: "Sneaky", notes: "" }, { space });
    const report = await carry(revoked, a, space);
    expect(report.rejected.map((r) => (r.error as CommitQuarantined).reason)).toEqual(["membership"]);
    const state = (await readMembership(a.replica.dexie, space.id))!;
    expect(state.deviceOwner.has(revoked.deviceId)).toBe(false);
    expect([...state.refused.values()]).toContain("invitation-revoked");
    // The redeeming device learns it too: its writes now fail at once.
    await carry(a, revoked, space);
    const row = await revoked.replica.dexie.table<SpaceRow>("_spaces").get(space.id);
    expect(row?.readOnly).toBe("not-a-member");
  });
});
