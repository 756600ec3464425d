import { describe, expect, it } from "vitest";
import { hashToken } from "./auth.ts";
import { RelayMetrics } from "./metrics.ts";
import { SpaceHub } from "./space-hub.ts";
import { SpaceMemberships } from "./space-memberships.ts";
import { safeFloor } from "./compaction-gate.ts";
import { storeUpload } from "./store-upload.ts";
import { sha256 } from "./store/commit-fixtures.ts";
import { MemoryStore } from "./store/memory-store.ts";
import { claimedSpace } from "./testing/claimed-space.ts";
import { TestChain, TestLog, testMember } from "./testing/member-fixtures.ts";
import { toHex } from "@shoal/client/protocol";

// Issue 16 item 3: the relay carries out a `compact` operation only when its author is an admin in
// its own causal past, and only up to what its stored snapshot covers (the meet of the two vectors); it
// stores every such operation, so the author's later commits are never stuck behind it, and stores one
// by a non-admin without compacting anything.

async function space() {
  const store = new MemoryStore();
  const [admin, writer] = [await testMember(), await testMember()];
  const { space, token } = claimedSpace(undefined, admin.node);
  await store.registerSpace(space, hashToken(token), admin.node.creator);
  const metrics = new RelayMetrics();
  const deps = {
    store,
    hub: new SpaceHub(),
    metrics,
    limits: { quotaBytesPerSpace: 1 << 30 },
    memberships: new SpaceMemberships(store),
  };
  const log = new TestLog(space);
  const [adminChain, writerChain] = [new TestChain(space, admin.device), new TestChain(space, writer.device)];
  const upload = (...commits: Uint8Array[]) => storeUpload(deps, space, commits);
  const create = await log.sign(admin, {
    kind: "create",
    person: "p-admin",
    name: "sealed",
    device: admin.keys,
  });
  const add = await log.sign(admin, {
    kind: "add-person",
    person: "p-writer",
    name: "sealed",
    role: "writer",
    device: writer.keys,
  });
  expect((await upload(adminChain.membership(create), adminChain.membership(add))).refused).toBeUndefined();
  const data = [writerChain.data(), writerChain.data(), writerChain.data()];
  expect((await upload(...data)).refused).toBeUndefined();
  return { store, metrics, space, admin, writer, log, adminChain, writerChain, upload, data };
}

describe("compact operations at the relay", () => {
  it("compacts once a snapshot covering the vector is there, and a re-upload does nothing more", async () => {
    const s = await space();
    const vector = { [s.writer.device]: 2 };
    const blob = new Uint8Array(500).fill(7);
    const compact = await s.log.sign(s.admin, { kind: "compact", vector, snapshot: toHex(sha256(blob)) });
    expect(await s.store.putSnapshot(s.space, new Map([[s.writer.device, 2]]), blob)).toBe("stored");
    const commit = s.adminChain.membership(compact);
    const stored = await s.upload(commit);
    expect(stored.refused).toBeUndefined();
    expect(stored.stored).toHaveLength(1);
    // The writer's first two data commits are gone; its third, the log and the snapshot stay.
    const read = await s.store.read(s.space, new Map(), { maxBytes: 1 << 24, maxCount: 100 });
    expect(read.commits.map(toHex)).not.toContain(toHex(s.data[0]!));
    expect(read.commits.map(toHex)).not.toContain(toHex(s.data[1]!));
    expect(read.commits.map(toHex)).toContain(toHex(s.data[2]!));
    expect((await s.store.getSnapshot(s.space))?.vector).toEqual(new Map([[s.writer.device, 2]]));
    expect(s.metrics.compactions).toBe(1);
    expect(s.metrics.compactedBytes).toBe(s.data[0]!.length + s.data[1]!.length);
    // A re-upload of the operation is a duplicate: nothing more happens.
    expect((await s.upload(commit)).duplicates).toBe(1);
    expect(s.metrics.compactions).toBe(1);
  });

  it("stores a non-admin's compact operation without compacting (it counts nowhere)", async () => {
    const s = await space();
    const blob = new Uint8Array(100);
    expect(await s.store.putSnapshot(s.space, new Map([[s.writer.device, 3]]), blob)).toBe("stored");
    const op = await s.log.sign(s.writer, {
      kind: "compact",
      vector: { [s.writer.device]: 3 },
      snapshot: toHex(sha256(blob)),
    });
    const before = await s.store.usage(s.space);
    const result = await s.upload(s.writerChain.membership(op));
    expect(result.refused).toBeUndefined();
    expect(s.metrics.compactions).toBe(0);
    const read = await s.store.read(s.space, new Map(), { maxBytes: 1 << 24, maxCount: 100 });
    expect(read.commits.map(toHex)).toContain(toHex(s.data[0]!));
    expect((await s.store.usage(s.space)).bytes).toBeGreaterThan(before.bytes);
  });

  it("stores a counted operation no snapshot covers, and the author's later commits with it", async () => {
    const s = await space();
    const blob = new Uint8Array(300).fill(3);
    const op = await s.log.sign(s.admin, {
      kind: "compact",
      vector: { [s.writer.device]: 2 },
      snapshot: toHex(sha256(blob)),
    });
    // No snapshot at all: the operation and the admin's next commit go in; nothing is dropped.
    const result = await s.upload(s.adminChain.membership(op), s.adminChain.data());
    expect(result.refused).toBeUndefined();
    expect(result.stored).toHaveLength(2);
    expect(s.metrics.compactions).toBe(0);
    const read = await s.store.read(s.space, new Map(), { maxBytes: 1 << 24, maxCount: 100 });
    for (const c of s.data) expect(read.commits.map(toHex)).toContain(toHex(c));
  });

  it("drops only up to the meet of the operation's vector and the stored snapshot's", async () => {
    const s = await space();
    // The snapshot stored covers the writer's first commit only (another admin's, or an older one).
    const blob = new Uint8Array(200).fill(5);
    expect(await s.store.putSnapshot(s.space, new Map([[s.writer.device, 1]]), blob)).toBe("stored");
    const op = await s.log.sign(s.admin, {
      kind: "compact",
      vector: { [s.writer.device]: 3, [s.admin.device]: 2 },
      snapshot: toHex(sha256(new Uint8Array(10))),
    });
    const result = await s.upload(s.adminChain.membership(op));
    expect(result.refused).toBeUndefined();
    expect(s.metrics.compactions).toBe(1);
    expect(s.metrics.compactedBytes).toBe(s.data[0]!.length);
    const read = await s.store.read(s.space, new Map(), { maxBytes: 1 << 24, maxCount: 100 });
    const held = read.commits.map(toHex);
    expect(held).not.toContain(toHex(s.data[0]!));
    expect(held).toContain(toHex(s.data[1]!));
    expect(held).toContain(toHex(s.data[2]!));
    // The snapshot still covers what was dropped: it stays, where fresh devices start.
    expect((await s.store.getSnapshot(s.space))?.vector).toEqual(new Map([[s.writer.device, 1]]));
    // The writer's next commit still chains to its compacted ones and goes in.
    expect((await s.upload(s.writerChain.data())).refused).toBeUndefined();
  });
});

describe("safeFloor", () => {
  it("is the per-device minimum, leaving out devices at 0, and empty without a snapshot", () => {
    const op = new Map([
      ["a", 5],
      ["b", 2],
      ["c", 4],
    ]);
    const snap = new Map([
      ["a", 3],
      ["b", 7],
      ["d", 9],
    ]);
    expect(safeFloor(op, snap)).toEqual(
      new Map([
        ["a", 3],
        ["b", 2],
      ]),
    );
    expect(safeFloor(op, undefined)).toEqual(new Map());
    expect(safeFloor(new Map([["c", 4]]), snap)).toEqual(new Map());
  });
});
