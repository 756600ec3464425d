import { describe, expect, it } from "vitest";
import {
  DEVICE_AUTH_WINDOW_MS,
  encodeBase64Url,
  MEMBERSHIP_REFUSALS,
  offeredSubprotocols,
  type MembershipFault,
  type MembershipOp,
} from "@shoal/client/protocol";
import { createApp } from "./app.ts";
import { RelayMetrics } from "./metrics.ts";
import { MemoryStore } from "./store/memory-store.ts";
import { incomingCommit } from "./store/incoming-commit.ts";
import { claimedSpace } from "./testing/claimed-space.ts";
import {
  deviceProof,
  invitationProof,
  testInvitation,
  TestChain,
  TestLog,
  testMember,
  type TestMember,
} from "./testing/member-fixtures.ts";

// The membership check of a space with members (PROTOCOL.md 1, check 10) at its three doors: the
// upgrade (200 here means every check passed), the access probe and the invitation log endpoint. The
// log is put in the store directly; uploads are tested through the relay process (relay-membership).

const HOUR = 3_600_000;

/** A registered space whose log has a counted `create` by `admin`, and the ways to knock on it. */
async function managedSpace() {
  const store = new MemoryStore();
  const metrics = new RelayMetrics();
  const upgradeWebSocket = (async (c: { text: (t: string, s: number) => Response }) =>
    c.text("upgraded", 200)) as never;
  const app = createApp({ store, metrics, upgradeWebSocket });
  const admin = await testMember();
  const { space, token, claim } = claimedSpace(undefined, admin.node);
  const log = new TestLog(space);
  const chain = new TestChain(space, admin.device);
  const ops: MembershipOp[] = [];
  /** Stores operations as `author`'s membership commits, as an accepted upload would. */
  const put = async (author: TestMember, authorChain: TestChain, ...actions: MembershipOp["action"][]) => {
    for (const action of actions) {
      const op = await log.sign(author, action);
      ops.push(op);
      const r = await store.append(space, [incomingCommit(authorChain.membership(op))], {
        quotaBytes: 1 << 30,
      });
      expect(r.refused).toBeUndefined();
    }
  };
  const upgrade = async (items: string[]) => {
    const protocols = offeredSubprotocols(token, claim, items).join(", ");
    const res = await app.request(`/sync/${space}`, {
      headers: { Upgrade: "websocket", Connection: "Upgrade", "Sec-WebSocket-Protocol": protocols },
    });
    return [res.status, await res.text()] as const;
  };
  // Probe and endpoint bodies: each proof is its subprotocol item without the prefix.
  const part = (item?: string) => (item === undefined ? "" : item.slice(item.indexOf(".") + 1));
  const post = async (path: string, body: string, origin?: string) => {
    const res = await app.request(`/sync/${space}/${path}`, {
      method: "POST",
      body,
      headers: { "Content-Type": "text/plain", ...(origin && { Origin: origin }) },
    });
    return res;
  };
  const probe = async (device?: string, invitation?: string) => {
    const res = await post("access", `${encodeBase64Url(token)}..${part(device)}.${part(invitation)}`);
    return [res.status, await res.text()] as const;
  };
  const invitationLog = (device?: string, invitation?: string, origin?: string) =>
    post("invitation", `${encodeBase64Url(token)}.${part(device)}.${part(invitation)}`, origin);
  /** The same answer at the three doors: admitted (200, 204, 200) or refused with `fault`'s text. */
  const expectEverywhere = async (fault: MembershipFault | undefined, items: string[]) => {
    const [device, invitation] = [items.find((i) => i.startsWith("shoal-device.")), items[1]];
    const logged = await invitationLog(device, invitation);
    const got = [await upgrade(items), await probe(device, invitation), [logged.status, await logged.text()]];
    if (fault === undefined) expect(got.map(([status]) => status)).toEqual([200, 204, 200]);
    else expect(got).toEqual(Array(3).fill([403, MEMBERSHIP_REFUSALS[fault]]));
  };

  // The first connection registers the space with its creator's key; it has no members yet.
  expect((await upgrade([]))[0]).toBe(200);
  await put(admin, chain, { kind: "create", person: "p-admin", name: "sealed", device: admin.keys });
  return { space, store, metrics, admin, chain, ops, put, upgrade, probe, invitationLog, expectEverywhere };
}

describe("membership check of a space with members", () => {
  it("admits a member's device with a current proof, and refuses a missing, foreign, old or future proof", async () => {
    const s = await managedSpace();
    await s.expectEverywhere(undefined, [await deviceProof(s.admin, s.space)]);
    await s.expectEverywhere("device-auth", []);
    const other = claimedSpace().space;
    await s.expectEverywhere("device-auth", [await deviceProof(s.admin, other)]);
    const old = Date.now() - DEVICE_AUTH_WINDOW_MS - 60_000;
    await s.expectEverywhere("device-auth", [await deviceProof(s.admin, s.space, old)]);
    const future = Date.now() + DEVICE_AUTH_WINDOW_MS + 60_000;
    await s.expectEverywhere("device-auth", [await deviceProof(s.admin, s.space, future)]);
    // Counted at the upgrade only (the probe and the endpoint are answers, not refused connections).
    expect(s.metrics.refusals("device-auth")).toBe(4);
  });

  it("refuses a stranger's device without an invitation (not-member), and one showing another device's proof", async () => {
    const s = await managedSpace();
    const stranger = await testMember();
    await s.expectEverywhere("not-member", [await deviceProof(stranger, s.space)]);
    expect(s.metrics.refusals("not-member")).toBe(1);
    const invitation = await testInvitation();
    await s.put(s.admin, s.chain, {
      kind: "invite",
      invitation: invitation.id,
      role: "writer",
      expires: Date.now() + HOUR,
      uses: 1,
    });
    const someoneElse = await invitationProof(invitation, s.space, await testMember());
    await s.expectEverywhere("not-member", [await deviceProof(stranger, s.space), someoneElse.item]);
  });

  it("admits a usable invitation until it is used, and refuses unknown, expired and revoked ones", async () => {
    const s = await managedSpace();
    const [single, expired, revoked, unknown] = await Promise.all([1, 2, 3, 4].map(() => testInvitation()));
    const invite = (id: string, expires: number) =>
      ({ kind: "invite", invitation: id, role: "writer", expires, uses: 1 }) as const;
    await s.put(
      s.admin,
      s.chain,
      invite(single!.id, Date.now() + HOUR),
      invite(expired!.id, Date.now() - 1000),
      invite(revoked!.id, Date.now() + HOUR),
      { kind: "revoke-invite", invitation: revoked!.id },
    );
    const [bob, carol] = [await testMember(), await testMember()];
    const shows = async (who: TestMember, invitation: typeof single) => [
      await deviceProof(who, s.space),
      (await invitationProof(invitation!, s.space, who)).item,
    ];
    await s.expectEverywhere(undefined, await shows(bob, single));
    await s.expectEverywhere("invitation-expired", await shows(bob, expired));
    await s.expectEverywhere("invitation-revoked", await shows(bob, revoked));
    await s.expectEverywhere("invitation-unknown", await shows(bob, unknown));
    // Bob redeems the single-use invitation: he is a member, and the invitation is spent for Carol.
    const { proof } = await invitationProof(single!, s.space, bob);
    await s.put(bob, new TestChain(s.space, bob.device), {
      kind: "redeem",
      invitation: single!.id,
      person: "p-bob",
      name: "sealed",
      device: bob.keys,
      proof,
    });
    await s.expectEverywhere(undefined, [await deviceProof(bob, s.space)]);
    await s.expectEverywhere("invitation-used", await shows(carol, single));
    expect(s.metrics.refusals("invitation-used")).toBe(1);
  });

  it("refuses a removed device, whatever it shows", async () => {
    const s = await managedSpace();
    const bob = await testMember();
    await s.put(s.admin, s.chain, {
      kind: "add-person",
      person: "p-bob",
      name: "sealed",
      role: "writer",
      device: bob.keys,
    });
    await s.expectEverywhere(undefined, [await deviceProof(bob, s.space)]);
    await s.put(s.admin, s.chain, { kind: "remove", person: "p-bob", cut: { [bob.device]: 0 } });
    await s.expectEverywhere("removed", [await deviceProof(bob, s.space)]);
    expect(s.metrics.refusals("removed")).toBe(1);
  });

  it("gives a member or an invited device every held operation as JSON, with CORS like the probe", async () => {
    const s = await managedSpace();
    const invitation = await testInvitation();
    await s.put(s.admin, s.chain, {
      kind: "invite",
      invitation: invitation.id,
      role: "reader",
      expires: Date.now() + HOUR,
      uses: 2,
    });
    const bob = await testMember();
    const res = await s.invitationLog(
      await deviceProof(bob, s.space),
      (await invitationProof(invitation, s.space, bob)).item,
      "https://app.example",
    );
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/json");
    expect(res.headers.get("access-control-allow-origin")).toBe("https://app.example");
    expect(await res.json()).toEqual({ ops: s.ops });
    const member = await s.invitationLog(await deviceProof(s.admin, s.space));
    expect(((await member.json()) as { ops: unknown[] }).ops).toHaveLength(2);
  });
});

describe("a space without members", () => {
  it("is open to every holder of its token, as before membership logs, at the three doors", async () => {
    const store = new MemoryStore();
    const upgradeWebSocket = (async (c: { text: (t: string, s: number) => Response }) =>
      c.text("upgraded", 200)) as never;
    const app = createApp({ store, upgradeWebSocket });
    const { space, token, claim } = claimedSpace();
    const headers = { Upgrade: "websocket", Connection: "Upgrade" };
    const protocols = offeredSubprotocols(token, claim).join(", ");
    const up = await app.request(`/sync/${space}`, {
      headers: { ...headers, "Sec-WebSocket-Protocol": protocols },
    });
    expect(up.status).toBe(200);
    // A `create` by a key other than the space's creator does not count: still no members.
    const mallory = await testMember();
    const op = await new TestLog(space).sign(mallory, {
      kind: "create",
      person: "p",
      name: "n",
      device: mallory.keys,
    });
    await store.append(space, [incomingCommit(new TestChain(space, mallory.device).membership(op))], {
      quotaBytes: 1 << 30,
    });
    const again = await app.request(`/sync/${space}`, {
      headers: { ...headers, "Sec-WebSocket-Protocol": protocols },
    });
    expect(again.status).toBe(200);
    const post = (path: string, body: string) =>
      app.request(`/sync/${space}/${path}`, {
        method: "POST",
        body,
        headers: { "Content-Type": "text/plain" },
      });
    expect((await post("access", encodeBase64Url(token))).status).toBe(204);
    const logged = await post("invitation", `${encodeBase64Url(token)}..`);
    expect([logged.status, await logged.json()]).toEqual([200, { ops: [op] }]);
    expect(
      (
        await app.request(`/sync/${claimedSpace().space}/invitation`, {
          method: "POST",
          body: encodeBase64Url(token),
        })
      ).status,
    ).toBe(404);
  });
});
