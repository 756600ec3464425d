import { describe, expect, it } from "vitest";
import { decodeMessage, encodeMessage, fromHex, type Message } from "@shoal/client/protocol";
import { hashToken } from "./auth.ts";
import { resolveRelayLimits } from "./limits.ts";
import { RelayMetrics } from "./metrics.ts";
import { RelaySession } from "./relay-session.ts";
import { SpaceHub } from "./space-hub.ts";
import { SpaceMemberships } from "./space-memberships.ts";
import { incomingCommit } from "./store/incoming-commit.ts";
import { MemoryStore } from "./store/memory-store.ts";
import { claimedSpace } from "./testing/claimed-space.ts";
import { TestChain, TestLog, testMember, type TestMember } from "./testing/member-fixtures.ts";

// Issue 16 item 3: in a space with members only an admin's device stores a snapshot (the compacted one
// fresh devices start from); a writer's is refused (non-fatal `membership`) and the stored one stays.

const silentLog = () => {};

async function memberSpace() {
  const store = new MemoryStore();
  const [admin, writer] = [await testMember(), await testMember()];
  const { space, token } = claimedSpace(undefined, admin.node);
  await store.registerSpace(space, hashToken(token), admin.node.creator);
  const log = new TestLog(space);
  const chain = new TestChain(space, admin.device);
  const ops = [
    await log.sign(admin, { kind: "create", person: "p-admin", name: "sealed", device: admin.keys }),
    await log.sign(admin, {
      kind: "add-person",
      person: "p-writer",
      name: "sealed",
      role: "writer",
      device: writer.keys,
    }),
  ];
  const r = await store.append(
    space,
    ops.map((op) => incomingCommit(chain.membership(op))),
    { quotaBytes: 1 << 30 },
  );
  expect(r.refused).toBeUndefined();
  const memberships = new SpaceMemberships(store);
  const connect = (who: TestMember) => {
    const frames: Message[] = [];
    const waiters: (() => void)[] = [];
    const socket = {
      send: (bytes: Uint8Array) => {
        frames.push(decodeMessage(bytes));
        for (const w of waiters.splice(0)) w();
      },
      close: () => {},
      bufferedAmount: () => 0,
    };
    const session = new RelaySession({
      space,
      socket,
      store,
      hub: new SpaceHub(),
      metrics: new RelayMetrics(),
      limits: resolveRelayLimits({}),
      log: silentLog,
      memberships,
      device: who.device,
    });
    const send = (m: Message) => session.receive(encodeMessage(m));
    const until = async (n: number) => {
      while (frames.length < n) await new Promise<void>((r) => waiters.push(r));
    };
    return { frames, send, until };
  };
  return { store, space, admin, writer, connect };
}

describe("snapshots of a space with members", () => {
  it("are stored from an admin's device only", async () => {
    const s = await memberSpace();
    const spaceBytes = fromHex(s.space, 16);
    const vector = [{ device: fromHex(s.admin.device, 16), seq: 2 }];
    const put = (bytes: Uint8Array): Message => ({
      type: "snapshot-put",
      space: spaceBytes,
      vector,
      part: 0,
      parts: 1,
      bytes,
    });
    const hello = (who: TestMember): Message => ({
      type: "hello",
      minVersion: 1,
      maxVersion: 3,
      device: fromHex(who.device, 16),
    });

    const w = s.connect(s.writer);
    await w.send(hello(s.writer));
    await w.until(1);
    await w.send(put(Uint8Array.of(1, 2, 3)));
    await w.until(2);
    expect(w.frames[1]).toMatchObject({ type: "error", code: "membership", fatal: false });
    expect(await s.store.getSnapshot(s.space)).toBeUndefined();

    const a = s.connect(s.admin);
    await a.send(hello(s.admin));
    await a.until(1);
    await a.send(put(Uint8Array.of(4, 5, 6)));
    await a.until(2);
    expect(a.frames[1]).toMatchObject({ type: "snapshot-stored" });
    expect((await s.store.getSnapshot(s.space))?.bytes).toEqual(Uint8Array.of(4, 5, 6));
  });
});
