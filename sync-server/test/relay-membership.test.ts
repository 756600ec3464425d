import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  DEVICE_AUTH_WINDOW_MS,
  encodeBase64Url,
  fromHex,
  MEMBERSHIP_REFUSALS,
  type MembershipAction,
  type MembershipOp,
} from "@shoal/client/protocol";
import { makeChain, randomId, testDevice } from "../src/store/commit-fixtures.ts";
import { claimedSpace } from "../src/testing/claimed-space.ts";
import {
  deviceProof,
  invitationProof,
  testInvitation,
  TestChain,
  TestLog,
  testMember,
  type TestInvitation,
  type TestMember,
} from "../src/testing/member-fixtures.ts";
import { startRelayProcess, type RelayProcess } from "./relay-process.ts";
import { connectReady, HttpRefusal, uploadCommits, type TestClient } from "./ws-client.ts";

// Membership commits through the real relay process (CLI, SQLite, WebSockets): what the relay checks
// when one is uploaded, what a space's log then refuses (PROTOCOL.md 5), and removal taking effect on
// open connections. The three doors' answers are in src/membership-access.test.ts.
const clients: TestClient[] = [];
let relay: RelayProcess;
let dir: string;
const HOUR = 3_600_000;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "shoal-relay-membership-"));
  relay = await startRelayProcess(["--quiet", "--data", dir]);
});

afterAll(async () => {
  for (const c of clients) c.ws.terminate();
  await relay.stop("SIGKILL");
  rmSync(dir, { recursive: true, force: true });
});

/** `member`'s connection to `space` with its device proof (and `items`), through hello and welcome. */
async function connectAs(space: string, token: Uint8Array, member: TestMember, items: string[] = []) {
  const c = await connectReady(relay.wsUrl, space, token, member.device, {
    items: [await deviceProof(member, space), ...items],
  });
  clients.push(c);
  return c;
}

/** The error code and device the relay refused an upload with (undefined: everything acked). */
async function refusal(c: TestClient, space: string, commits: Uint8Array[]) {
  const { error } = await uploadCommits(c, space, commits);
  return error && { code: error.code, device: error.device && Buffer.from(error.device).toString("hex") };
}

/** A space created by `admin`, whose `create` the relay stored: from now on it has members. */
async function createdSpace() {
  const admin = await testMember();
  const { space, token } = claimedSpace(undefined, admin.node);
  const log = new TestLog(space);
  const chain = new TestChain(space, admin.device);
  const conn = await connectAs(space, token, admin);
  const sign = (action: MembershipAction, author = admin, at?: number) => log.sign(author, action, at);
  /** Signs `action` as the admin and uploads it; expects it stored. */
  const admit = async (action: MembershipAction) => {
    const commit = chain.membership(await sign(action));
    expect(await refusal(conn, space, [commit])).toBeUndefined();
  };
  await admit({ kind: "create", person: "p-admin", name: "sealed", device: admin.keys });
  /** A single-use writer invitation the admin signs and the relay stores. */
  const invite = async () => {
    const invitation = await testInvitation();
    const expires = Date.now() + HOUR;
    await admit({ kind: "invite", invitation: invitation.id, role: "writer", expires, uses: 1 });
    return invitation;
  };
  /** `who`, let in by `invitation`: its connection, chain, and its redemption's first commit. */
  const invitee = async (invitation: TestInvitation, who?: TestMember, at?: number) => {
    who ??= await testMember();
    const shown = await invitationProof(invitation, space, who);
    const whoConn = await connectAs(space, token, who, [shown.item]);
    const action = { kind: "redeem", invitation: invitation.id, person: `p-${who.device}`, name: "sealed" };
    const redeem = await sign(
      { ...action, device: who.keys, proof: shown.proof } as MembershipAction,
      who,
      at,
    );
    const whoChain = new TestChain(space, who.device);
    return { who, conn: whoConn, chain: whoChain, redeem: whoChain.membership(redeem) };
  };
  /** Whether `who`, showing `invitation`, is refused at the door (403). */
  const turnedAway = async (invitation: TestInvitation) => {
    const who = await testMember();
    const shown = (await invitationProof(invitation, space, who)).item;
    await expect(connectAs(space, token, who, [shown])).rejects.toMatchObject({ status: 403 });
  };
  return { admin, space, token, chain, conn, sign, admit, invite, invitee, turnedAway };
}

describe("membership commits at the relay", () => {
  it("stores a create, an invitation and a redemption with the new member's first data in one frame", async () => {
    const s = await createdSpace();
    const invitation = await s.invite();
    const bob = await s.invitee(invitation);
    expect(await refusal(bob.conn, s.space, [bob.redeem, bob.chain.data()])).toBeUndefined();
    // The log as the endpoint gives it, in arrival order.
    const res = await fetch(`${relay.url}/sync/${s.space}/invitation`, {
      method: "POST",
      body: `${encodeBase64Url(s.token)}.${(await deviceProof(bob.who, s.space)).split(".")[1]}.`,
    });
    const { ops } = (await res.json()) as { ops: MembershipOp[] };
    expect(ops.map((op) => op.action.kind)).toEqual(["create", "invite", "redeem"]);
    // A second device with the spent single-use invitation is turned away at the door.
    await s.turnedAway(invitation);
  });

  it("refuses the second redemption of a single-use invitation by a device let in before the first", async () => {
    const s = await createdSpace();
    const invitation = await s.invite();
    const [bob, carol] = [await s.invitee(invitation), await s.invitee(invitation)];
    expect(await refusal(bob.conn, s.space, [bob.redeem])).toBeUndefined();
    expect(await refusal(carol.conn, s.space, [carol.redeem])).toEqual({
      code: "membership",
      device: carol.who.device,
    });
    expect(carol.conn.ws.readyState).toBe(carol.conn.ws.OPEN);
  });

  it("refuses an operation that does not verify, names another space or another author, alone, with `membership`", async () => {
    const s = await createdSpace();
    const invitation = await testInvitation();
    const expires = Date.now() + HOUR;
    const good = await s.sign({
      kind: "invite",
      invitation: invitation.id,
      role: "writer",
      expires,
      uses: 1,
    });
    const bad: MembershipOp[] = [
      { ...good, at: good.at + 1 }, // signature no longer verifies
      { ...good, space: randomId() },
      { ...good, author: randomId() },
    ];
    for (const op of bad) {
      const refused = await refusal(s.conn, s.space, [s.chain.membership(op)]);
      expect(refused).toEqual({ code: "membership", device: s.admin.device });
      s.chain.rewind();
    }
    // The session kept serving: the same seq with the good operation is stored, and counts.
    expect(await refusal(s.conn, s.space, [s.chain.membership(good)])).toBeUndefined();
    await s.invitee(invitation);
  });

  it("stores an operation by a non-admin, which does not count", async () => {
    const s = await createdSpace();
    const bob = await testMember();
    await s.admit({ kind: "add-person", person: "p-bob", name: "sealed", role: "writer", device: bob.keys });
    const bobConn = await connectAs(s.space, s.token, bob);
    const invitation = await testInvitation();
    const action = {
      kind: "invite",
      invitation: invitation.id,
      role: "admin",
      expires: Date.now() + HOUR,
      uses: 1,
    };
    const invite = await s.sign(action as MembershipAction, bob);
    const commit = new TestChain(s.space, bob.device).membership(invite);
    expect(await refusal(bobConn, s.space, [commit])).toBeUndefined();
    await s.turnedAway(invitation);
  });

  it("refuses a redemption whose time is far from the relay's clock", async () => {
    const s = await createdSpace();
    const late = Date.now() - DEVICE_AUTH_WINDOW_MS - 60_000;
    const bob = await s.invitee(await s.invite(), undefined, late);
    const refused = { code: "membership", device: bob.who.device };
    expect(await refusal(bob.conn, s.space, [bob.redeem])).toEqual(refused);
    // Not a member: its data is refused too, and the connection keeps serving.
    bob.chain.rewind();
    expect(await refusal(bob.conn, s.space, [bob.chain.data()])).toEqual(refused);
  });

  it("closes a removed device's open connection with 4403, refuses it afterwards, and refuses its commits beyond the cut", async () => {
    const s = await createdSpace();
    const bob = await testMember();
    await s.admit({ kind: "add-person", person: "p-bob", name: "sealed", role: "writer", device: bob.keys });
    const bobConn = await connectAs(s.space, s.token, bob);
    const bobChain = new TestChain(s.space, bob.device);
    const [first, second, beyond] = [bobChain.data(), bobChain.data(), bobChain.data()];
    expect(await refusal(bobConn, s.space, [first!, second!])).toBeUndefined();
    await s.admit({ kind: "remove", person: "p-bob", cut: { [bob.device]: 2 } });
    expect(await bobConn.closed).toEqual({ code: 4403, reason: `HTTP 403: ${MEMBERSHIP_REFUSALS.removed}` });
    const again = await connectAs(s.space, s.token, bob).catch((e: unknown) => e);
    expect(again).toBeInstanceOf(HttpRefusal);
    expect((again as HttpRefusal).status).toBe(403);
    // Bob's third commit, relayed by someone else, is beyond his cut; the admin's session goes on.
    expect(await refusal(s.conn, s.space, [beyond!])).toEqual({ code: "membership", device: bob.device });
    expect(await refusal(s.conn, s.space, [s.chain.data()])).toBeUndefined();
  });

  it("stores a reader's data commits (every replica refuses them), so what the reader writes after them still chains", async () => {
    const s = await createdSpace();
    const dave = await testMember();
    const add = { kind: "add-person", person: "p-dave", name: "sealed", role: "reader", device: dave.keys };
    await s.admit(add as MembershipAction);
    expect(await refusal(s.conn, s.space, [s.chain.data()])).toBeUndefined();
    const daveConn = await connectAs(s.space, s.token, dave);
    const daves = new TestChain(s.space, dave.device);
    expect(await refusal(daveConn, s.space, [daves.data(), daves.data()])).toBeUndefined();
    const from = daveConn.frames.length;
    daveConn.send({ type: "pull", space: fromHex(s.space, 16), vector: [], maxBytes: 1 << 20 });
    expect((await daveConn.next("commits", from)).commits).toHaveLength(5);
  });
});

describe("a space without members", () => {
  it("takes any device's commits with no device proof, as before", async () => {
    const { space, token } = claimedSpace();
    const d = testDevice();
    const c = await connectReady(relay.wsUrl, space, token, d);
    clients.push(c);
    expect(await refusal(c, space, makeChain(space, d, 3))).toBeUndefined();
    expect(await refusal(c, space, makeChain(space, testDevice(), 1))).toBeUndefined();
  });
});
