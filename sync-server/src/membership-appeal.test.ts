import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import {
  encodeBase64Url,
  MEMBERSHIP_REFUSALS,
  offeredSubprotocols,
  type MembershipOp,
} from "@shoal/client/protocol";
import { createApp } from "./app.ts";
import { hashToken } from "./auth.ts";
import { MembershipBatch } from "./membership-batch.ts";
import { RelayMetrics } from "./metrics.ts";
import { SpaceHub, type HubMember } from "./space-hub.ts";
import { SpaceMemberships } from "./space-memberships.ts";
import { incomingCommit } from "./store/incoming-commit.ts";
import { MemoryStore } from "./store/memory-store.ts";
import { SqliteStore } from "./store/sqlite-store.ts";
import type { RelayStore } from "./store/store.ts";
import { claimedSpace } from "./testing/claimed-space.ts";
import { deviceProof, TestChain, TestLog, testMember, type TestMember } from "./testing/member-fixtures.ts";

// Issue 13, "senior admin locked out": two admins remove each other offline; the junior's removal
// reaches the relay first. The senior's frame of offline data and its own removal of the junior is
// taken whole (the look-ahead), and a senior refused at the door uploads it through the appeal.

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

const stores: [string, () => RelayStore][] = [
  ["memory", () => new MemoryStore()],
  [
    "sqlite",
    () => {
      const dir = mkdtempSync(join(tmpdir(), "shoal-appeal-"));
      const store = new SqliteStore(join(dir, "relay.sqlite"));
      cleanups.push(() => {
        void store.close();
        rmSync(dir, { recursive: true, force: true });
      });
      return store;
    },
  ],
];

/** A connection of the space as the hub sees it: what it was pushed and how it was closed. */
function fakeConnection(space: string, device: string) {
  const seen = { pushed: [] as Uint8Array[], closed: undefined as number | undefined };
  const member: HubMember = {
    space,
    push: (commits) => seen.pushed.push(...commits),
    close: (code) => (seen.closed = code),
    speaksFor: (d) => d === device,
  };
  return { member, seen };
}

/**
 * A1 created the space and made A2 an admin; offline, A2 removed A1 and A1 removed A2 (and wrote two
 * data commits first). A2's removal is stored: the relay holds A1 removed, every full log holds A2.
 */
async function mutualRemoval(store: RelayStore) {
  const metrics = new RelayMetrics();
  const hub = new SpaceHub();
  const upgradeWebSocket = (async (c: { text: (t: string, s: number) => Response }) =>
    c.text("upgraded", 200)) as never;
  const app = createApp({ store, metrics, hub, upgradeWebSocket });
  const [a1, a2] = [await testMember(), await testMember()];
  const { space, token, claim } = claimedSpace(undefined, a1.node);
  await store.registerSpace(space, hashToken(token), a1.node.creator);
  const log = new TestLog(space);
  const [chain1, chain2] = [new TestChain(space, a1.device), new TestChain(space, a2.device)];
  const put = async (...commits: Uint8Array[]) => {
    const r = await store.append(
      space,
      commits.map((c) => incomingCommit(c)),
      { quotaBytes: 1 << 30 },
    );
    expect(r.refused).toBeUndefined();
  };
  const add = { kind: "add-person", person: "p-a2", name: "sealed", role: "admin", device: a2.keys } as const;
  await put(
    chain1.membership(
      await log.sign(a1, { kind: "create", person: "p-a1", name: "sealed", device: a1.keys }),
    ),
    chain1.membership(await log.sign(a1, add)),
  );
  const juniorLog = log.fork();
  const a2RemovesA1 = await juniorLog.sign(a2, { kind: "remove", person: "p-a1", cut: { [a1.device]: 2 } });
  const a1RemovesA2 = await log.sign(a1, { kind: "remove", person: "p-a2", cut: { [a2.device]: 0 } });
  await put(chain2.membership(a2RemovesA1));
  const upgrade = async (who: TestMember) => {
    const protocols = offeredSubprotocols(token, claim, [await deviceProof(who, space)]).join(", ");
    const res = await app.request(`/sync/${space}`, {
      headers: { Upgrade: "websocket", Connection: "Upgrade", "Sec-WebSocket-Protocol": protocols },
    });
    return [res.status, await res.text()] as const;
  };
  const appeal = async (who: TestMember, commits: Uint8Array[], tokenBytes = token) => {
    const proof = (await deviceProof(who, space)).split(".")[1]!;
    const body = [encodeBase64Url(tokenBytes), proof, ...commits.map(encodeBase64Url)].join(".");
    const res = await app.request(`/sync/${space}/appeal`, { method: "POST", body });
    const text = await res.text();
    return [
      res.status,
      res.headers.get("content-type")?.startsWith("application/json") ? JSON.parse(text) : text,
    ] as const;
  };
  const judge = async (commits: Uint8Array[]) =>
    new MembershipBatch(await new SpaceMemberships(store).view(space), space).judge(
      commits.map((c) => incomingCommit(c)),
      Date.now(),
    );
  const removed = async () => [
    ...(await new SpaceMemberships(store).view(space)).state!.removedDevices.keys(),
  ];
  return {
    app,
    hub,
    metrics,
    store,
    space,
    a1,
    a2,
    chain1,
    chain2,
    a1RemovesA2,
    upgrade,
    appeal,
    judge,
    removed,
  };
}

const REMOVED_WRITE = "This device was removed from the space; its commits beyond its cut are refused.";

describe.each(stores)("a senior admin removed by a junior first (%s store)", (_name, makeStore) => {
  it("judges a frame with the operations it carries: data, then the removal that cancels the device's own", async () => {
    const s = await mutualRemoval(makeStore());
    expect(await s.removed()).toEqual([s.a1.device]);
    const frame = [s.chain1.data(), s.chain1.data(), s.chain1.membership(s.a1RemovesA2)];
    expect(await s.judge(frame)).toEqual({ accepted: 3 });
    // Without the cancelling operation, the removed device's data beyond its cut stays refused.
    const alone = await s.judge(frame.slice(0, 2));
    expect([alone.accepted, alone.refused?.message]).toEqual([0, REMOVED_WRITE]);
  });

  it("leaves out of the look-ahead an operation that does not verify, and what comes after a refusal", async () => {
    const s = await mutualRemoval(makeStore());
    const forged: MembershipOp = { ...s.a1RemovesA2, at: s.a1RemovesA2.at + 1 };
    const data = s.chain1.data();
    const frame = [data, s.chain1.membership(forged), s.chain1.membership(s.a1RemovesA2)];
    // The valid removal comes after the forged one, which ends what may be stored: the data that
    // leaned on the removal is refused as the removed device's.
    const verdict = await s.judge(frame);
    expect([verdict.accepted, verdict.refused?.seq, verdict.refused?.message]).toEqual([0, 3, REMOVED_WRITE]);
  });

  it("lets the senior appeal at the door: stored, published, the junior closed out, the senior let in", async () => {
    const s = await mutualRemoval(makeStore());
    expect(await s.upgrade(s.a1)).toEqual([403, MEMBERSHIP_REFUSALS.removed]);
    const junior = fakeConnection(s.space, s.a2.device);
    s.hub.join(junior.member);
    const frame = [s.chain1.data(), s.chain1.data(), s.chain1.membership(s.a1RemovesA2)];
    expect(await s.appeal(s.a1, frame)).toEqual([200, { admitted: true, stored: 3 }]);
    expect(junior.seen.pushed).toEqual(frame);
    expect(junior.seen.closed).toBe(4403);
    expect(await s.removed()).toEqual([s.a2.device]);
    expect((await s.store.vector(s.space)).get(s.a1.device)).toBe(5);
    expect((await s.upgrade(s.a1))[0]).toBe(200);
    expect(await s.upgrade(s.a2)).toEqual([403, MEMBERSHIP_REFUSALS.removed]);
    // The junior's own appeal changes nothing: its data is beyond its cut, and it stays out.
    const [status, body] = await s.appeal(s.a2, [s.chain2.data()]);
    expect(status).toBe(403);
    expect(body).toMatchObject({ admitted: false, stored: 0, refusal: MEMBERSHIP_REFUSALS.removed });
    expect(body.refused).toMatchObject({ code: "membership", device: s.a2.device, seq: 2 });
    const page = await s.metrics.render(undefined);
    expect(page).toContain('shoal_appeals_total{status="200"} 1');
    expect(page).toContain('shoal_appeals_total{status="403"} 1');
  });

  it("refuses an appeal that cannot cancel the removal, and keeps its other doors shut", async () => {
    const s = await mutualRemoval(makeStore());
    const data = s.chain1.data();
    const [status, body] = await s.appeal(s.a1, [data]);
    expect(status).toBe(403);
    expect(body).toMatchObject({ admitted: false, stored: 0, refusal: MEMBERSHIP_REFUSALS.removed });
    expect(body.refused).toMatchObject({ code: "membership", seq: 3, message: REMOVED_WRITE });
    // Only its own commits, only with the space's token, only a device the log knows.
    expect((await s.appeal(s.a1, [s.chain2.data()]))[0]).toBe(400);
    expect((await s.appeal(s.a1, [], new Uint8Array(32)))[0]).toBe(403);
    const stranger = await testMember();
    expect(await s.appeal(stranger, [])).toEqual([403, MEMBERSHIP_REFUSALS["not-member"]]);
    expect((await s.store.vector(s.space)).get(s.a1.device)).toBe(2);
  });
});
