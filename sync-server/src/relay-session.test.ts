import { describe, expect, it } from "vitest";
import {
  MAX_REPLACEMENTS_PER_CONNECTION,
  decodeMessage,
  encodeMessage,
  fromHex,
  toHex,
  type Message,
} from "@shoal/client/protocol";
import { hashToken } from "./auth.ts";
import { resolveRelayLimits, type RelayLimits } from "./limits.ts";
import { RelayMetrics } from "./metrics.ts";
import { RelaySession } from "./relay-session.ts";
import { silentLog } from "./relay-log.ts";
import { SpaceHub } from "./space-hub.ts";
import { makeChain, randomId, siblingCommit, testDevice } from "./store/commit-fixtures.ts";
import { incomingCommit } from "./store/incoming-commit.ts";
import { MemoryStore } from "./store/memory-store.ts";

/** A socket that records frames and resolves waiters, so tests await messages instead of sleeping. */
class FakeSocket {
  readonly frames: Message[] = [];
  readonly raw: Uint8Array[] = [];
  closedWith: { code: number; reason: string } | undefined;
  buffered = 0;
  #waiters: (() => void)[] = [];
  send(bytes: Uint8Array): void {
    this.raw.push(bytes);
    this.frames.push(decodeMessage(bytes));
    this.#wake();
  }
  close(code: number, reason: string): void {
    this.closedWith = { code, reason };
    this.#wake();
  }
  bufferedAmount(): number {
    return this.buffered;
  }
  async until(pred: () => boolean): Promise<void> {
    while (!pred()) await new Promise<void>((r) => this.#waiters.push(r));
  }
  #wake(): void {
    for (const w of this.#waiters.splice(0)) w();
  }
}

async function setup(limits: Partial<RelayLimits> = {}) {
  const store = new MemoryStore();
  const hub = new SpaceHub();
  const metrics = new RelayMetrics();
  const space = randomId();
  await store.registerSpace(space, hashToken(new Uint8Array(32)));
  const connect = () => {
    const socket = new FakeSocket();
    const session = new RelaySession({
      space,
      socket,
      store,
      hub,
      metrics,
      limits: resolveRelayLimits(limits),
      log: silentLog,
    });
    return { socket, session, send: (m: Message) => session.receive(encodeMessage(m)) };
  };
  return { store, hub, metrics, space, spaceBytes: fromHex(space, 16), connect };
}

const device = fromHex(testDevice(), 16);
const hello: Message = { type: "hello", minVersion: 1, maxVersion: 3, device };

describe("RelaySession", () => {
  it("negotiates, stores, acks, fans out and answers pulls", async () => {
    const { space, spaceBytes, connect, metrics } = await setup();
    const a = connect();
    const b = connect();
    a.send(hello);
    b.send(hello);
    await a.socket.until(() => a.socket.frames.length === 1);
    await b.socket.until(() => b.socket.frames.length === 1);
    expect(a.socket.frames[0]).toEqual({ type: "welcome", version: 2, vector: [] });
    const d = testDevice();
    const chain = makeChain(space, d, 2);
    a.send({ type: "commits", space: spaceBytes, commits: chain, more: false });
    await a.socket.until(() => a.socket.frames.length === 2);
    expect(a.socket.frames[1]).toEqual({
      type: "ack",
      space: spaceBytes,
      entries: [{ device: fromHex(d), seq: 2 }],
    });
    await b.socket.until(() => b.socket.frames.length === 2);
    expect(b.socket.frames[1]).toMatchObject({ type: "commits", commits: chain, reply: false });
    b.send({ type: "pull", space: spaceBytes, vector: [{ device: fromHex(d), seq: 1 }], maxBytes: 1 << 20 });
    await b.socket.until(() => b.socket.frames.length === 3);
    expect(b.socket.frames[2]).toMatchObject({
      type: "commits",
      commits: [chain[1]],
      more: false,
      reply: true,
    });
    expect(metrics.commitsIn).toBe(2);
  });

  it("refuses a gap with a non-fatal error after the ack, and keeps the session", async () => {
    const { space, spaceBytes, connect, metrics } = await setup();
    const a = connect();
    a.send(hello);
    const d = testDevice();
    const chain = makeChain(space, d, 3);
    a.send({ type: "commits", space: spaceBytes, commits: [chain[0]!, chain[2]!], more: false });
    await a.socket.until(() => a.socket.frames.length === 3);
    expect(a.socket.frames[1]).toMatchObject({ type: "ack", entries: [{ seq: 1 }] });
    expect(a.socket.frames[2]).toMatchObject({ type: "error", code: "gap", fatal: false, seq: 3 });
    expect(a.socket.closedWith).toBeUndefined();
    a.send({ type: "ping", nonce: 9 });
    await a.socket.until(() => a.socket.frames.length === 4);
    expect(a.socket.frames[3]).toEqual({ type: "pong", nonce: 9 });
    expect(await metrics.render({ spaces: 1, commits: 1, bytes: 1 })).toContain(
      'shoal_commits_refused_total{code="gap"} 1',
    );
  });

  it("closes with an error frame when the first frame is not hello, or a frame is broken", async () => {
    const { spaceBytes, connect, metrics } = await setup();
    const a = connect();
    a.send({ type: "pull", space: spaceBytes, vector: [], maxBytes: 1 });
    await a.socket.until(() => a.socket.closedWith !== undefined);
    expect(a.socket.frames[0]).toMatchObject({ type: "error", code: "protocol", fatal: true });
    expect(a.socket.closedWith?.code).toBe(1002);
    const b = connect();
    b.session.receive(Uint8Array.of(1, 1, 1));
    await b.socket.until(() => b.socket.closedWith !== undefined);
    expect(metrics.rejected("truncated")).toBe(1);
    const c = connect();
    c.session.receive("text");
    await c.socket.until(() => c.socket.closedWith !== undefined);
    expect(c.socket.closedWith?.code).toBe(1003);
  });

  it("refuses a hello without a common version, and a pull for another space", async () => {
    const { connect } = await setup();
    const a = connect();
    a.send({ type: "hello", minVersion: 3, maxVersion: 4, device });
    await a.socket.until(() => a.socket.closedWith !== undefined);
    expect(a.socket.frames[0]).toMatchObject({ type: "error", code: "version", fatal: true });
    const b = connect();
    b.send(hello);
    b.send({ type: "pull", space: fromHex(randomId()), vector: [], maxBytes: 1 });
    await b.socket.until(() => b.socket.closedWith !== undefined);
    expect(b.socket.frames[1]).toMatchObject({ type: "error", code: "protocol" });
  });

  it("refuses a version-1 hello with an error version frame a version-1 client can read", async () => {
    const { connect } = await setup();
    const a = connect();
    a.send({ type: "hello", minVersion: 1, maxVersion: 1, device });
    await a.socket.until(() => a.socket.closedWith !== undefined);
    expect(a.socket.frames).toHaveLength(1);
    expect(a.socket.frames[0]).toMatchObject({ type: "error", code: "version", fatal: true });
    expect(a.socket.raw[0]![0]).toBe(1); // the frame version byte of hello, which every version reads
    expect(a.socket.closedWith?.code).toBe(1002);
    // A frame of version 1 after a hello is refused the same way.
    const b = connect();
    b.send(hello);
    const pullV1 = encodeMessage({ type: "pull", space: fromHex(randomId()), vector: [], maxBytes: 1 });
    pullV1[0] = 1;
    b.session.receive(pullV1);
    await b.socket.until(() => b.socket.closedWith !== undefined);
    expect(b.socket.frames[1]).toMatchObject({ type: "error", code: "version", fatal: true });
  });

  it("pages a welcome of 10,000 devices and answers a paged pull once, for the whole vector", async () => {
    const { connect, store, space, spaceBytes } = await setup({
      messagesPerSecond: 1000,
      messageBurst: 1000,
    });
    const devices = Array.from({ length: 10_000 }, () => testDevice());
    const commits = devices.map((d) => makeChain(space, d, 1)[0]!);
    await store.append(
      space,
      commits.map((c) => incomingCommit(c)),
      { quotaBytes: 1 << 30 },
    );
    const a = connect();
    a.send(hello);
    await a.socket.until(() => a.socket.frames.some((f) => f.type === "welcome" && !f.more));
    const pages = a.socket.frames.filter((f) => f.type === "welcome");
    expect(pages.map((p) => (p.type === "welcome" ? [p.vector.length, p.more === true] : []))).toEqual([
      [4096, true],
      [4096, true],
      [1808, false],
    ]);
    // The client holds all but the last device's commit: three pages, one reply with that commit.
    const vector = devices.slice(0, -1).map((d) => ({ device: fromHex(d, 16), seq: 1 }));
    const pullPages = [vector.slice(0, 4096), vector.slice(4096, 8192), vector.slice(8192)];
    pullPages.forEach((page, i) =>
      a.send({ type: "pull", space: spaceBytes, vector: page, maxBytes: 1 << 20, more: i < 2 }),
    );
    await a.socket.until(() => a.socket.frames.some((f) => f.type === "commits"));
    const replies = a.socket.frames.filter((f) => f.type === "commits");
    expect(replies).toHaveLength(1);
    expect(replies[0]).toMatchObject({ reply: true, more: false, commits: [commits.at(-1)] });
    // 10,000 Ed25519 key pairs, signatures and verifications take seconds on a small machine.
  }, 30_000);

  it("replaces a head for its author, and refuses other replacements", async () => {
    const { connect, store, space, spaceBytes } = await setup();
    const d = toHex(device);
    const chain = makeChain(space, d, 3);
    // Another commit the author signed at seq 2 (same header and length): stored, then replaced.
    const damaged = siblingCommit(chain[1]!);
    const a = connect();
    const b = connect();
    a.send(hello);
    b.send({ ...hello, device: fromHex(randomId(), 16) });
    a.send({ type: "commits", space: spaceBytes, commits: [chain[0]!, damaged], more: false });
    await a.socket.until(() => a.socket.frames.length >= 2);
    // The next commit does not chain to the damaged copy: refused; the intact copy replaces it.
    a.send({ type: "commits", space: spaceBytes, commits: [chain[2]!], more: false });
    a.send({ type: "commits", space: spaceBytes, commits: [chain[1]!], more: false, replace: true });
    a.send({ type: "commits", space: spaceBytes, commits: [chain[2]!], more: false });
    await a.socket.until(() => a.socket.frames.length >= 6);
    expect(a.socket.frames.slice(2)).toMatchObject([
      { type: "ack" },
      { type: "error", code: "chain", fatal: false, seq: 3 },
      { type: "ack", entries: [{ seq: 2 }] },
      { type: "ack", entries: [{ seq: 3 }] },
    ]);
    // The other connection got the damaged copy live, then the replacement, then the next commit (live
    // pushes leave at the end of the event-loop turn, after the acks).
    const pushedTo = () => b.socket.frames.flatMap((f) => (f.type === "commits" ? f.commits : []));
    await b.socket.until(() => pushedTo().length >= 4);
    const pushed = pushedTo();
    expect(pushed).toEqual([chain[0], damaged, chain[1], chain[2]]);
    // Commit 2 is history now (3 chains to it); and only the author's own connection replaces.
    a.send({ type: "commits", space: spaceBytes, commits: [damaged], more: false, replace: true });
    await a.socket.until(() => a.socket.frames.length >= 8);
    expect(a.socket.frames.slice(6)).toMatchObject([
      { type: "ack", entries: [] },
      { type: "error", code: "conflict", fatal: false, seq: 2 },
    ]);
    const from = b.socket.frames.length;
    b.send({ type: "commits", space: spaceBytes, commits: [chain[2]!], more: false, replace: true });
    await b.socket.until(() => b.socket.frames.length >= from + 2);
    expect(b.socket.frames.slice(from)).toMatchObject([
      { type: "ack", entries: [] },
      { code: "conflict", seq: 3 },
    ]);
    const read = await store.read(space, new Map(), { maxBytes: 1 << 20, maxCount: 10 });
    expect(read.commits).toEqual(chain);
  });

  it(`accepts at most ${MAX_REPLACEMENTS_PER_CONNECTION} replacements per connection`, async () => {
    const { connect, spaceBytes, space } = await setup();
    const a = connect();
    a.send(hello);
    const rounds = MAX_REPLACEMENTS_PER_CONNECTION + 1;
    const chain = makeChain(space, toHex(device), rounds);
    for (const [i, intact] of chain.entries()) {
      const damaged = siblingCommit(intact);
      a.send({ type: "commits", space: spaceBytes, commits: [damaged], more: false });
      a.send({ type: "commits", space: spaceBytes, commits: [intact], more: false, replace: true });
      await a.socket.until(() => a.socket.frames.length >= 1 + 2 * (i + 1) + (i === rounds - 1 ? 1 : 0));
    }
    expect(a.socket.frames.at(-1)).toMatchObject({
      type: "error",
      code: "rate-limited",
      fatal: false,
      seq: rounds,
    });
    expect(a.socket.closedWith).toBeUndefined();
  });

  it("closes a connection that floods frames, and a slow reader", async () => {
    const { connect, metrics } = await setup({ messagesPerSecond: 1, messageBurst: 3 });
    const a = connect();
    a.send(hello);
    for (let i = 0; i < 5; i++) a.send({ type: "ping", nonce: i });
    await a.socket.until(() => a.socket.closedWith !== undefined);
    expect(a.socket.closedWith?.code).toBe(1008);
    expect(metrics.rejected("rate-limited")).toBe(1);
    const b = connect();
    b.socket.buffered = 1 << 30;
    b.send(hello);
    await b.socket.until(() => b.socket.closedWith !== undefined);
    expect(b.socket.closedWith).toEqual({ code: 1008, reason: "slow reader" });
  });

  it("closes a connection that never says hello, and one that goes idle", async () => {
    const { connect, metrics } = await setup({ helloTimeoutMs: 20, idleTimeoutMs: 40 });
    const a = connect();
    await a.socket.until(() => a.socket.closedWith !== undefined);
    expect(a.socket.closedWith).toEqual({ code: 1008, reason: "no hello" });
    const b = connect();
    b.send(hello);
    await b.socket.until(() => b.socket.closedWith !== undefined);
    expect(b.socket.closedWith).toEqual({ code: 1000, reason: "idle timeout" });
    expect(await metrics.render({ spaces: 0, commits: 0, bytes: 0 })).toContain(
      'shoal_connections_closed_total{reason="idle"} 1',
    );
  });

  describe("snapshots", () => {
    const vectorOf = (d: string, seq: number) => [{ device: fromHex(d, 16), seq }];
    const parts = (blob: Uint8Array, size: number) =>
      Array.from({ length: Math.max(1, Math.ceil(blob.length / size)) }, (_, i) =>
        blob.subarray(i * size, (i + 1) * size),
      );
    const putAll = (
      send: (m: Message) => void,
      spaceBytes: Uint8Array,
      vector: { device: Uint8Array; seq: number }[],
      chunks: Uint8Array[],
    ) =>
      chunks.forEach((bytes, part) =>
        send({ type: "snapshot-put", space: spaceBytes, vector, part, parts: chunks.length, bytes }),
      );

    async function withCommits(limits: Partial<RelayLimits> = {}) {
      const env = await setup(limits);
      const a = env.connect();
      a.send(hello);
      const d = testDevice();
      a.send({ type: "commits", space: env.spaceBytes, commits: makeChain(env.space, d, 3), more: false });
      await a.socket.until(() => a.socket.frames.length === 2);
      return { ...env, a, d };
    }

    it("answers a get with one parts-0 frame when there is no snapshot", async () => {
      const { spaceBytes, connect } = await setup();
      const a = connect();
      a.send(hello);
      a.send({ type: "snapshot-get", space: spaceBytes });
      await a.socket.until(() => a.socket.frames.length === 2);
      expect(a.socket.frames[1]).toEqual({
        type: "snapshot",
        space: spaceBytes,
        vector: [],
        part: 0,
        parts: 0,
        bytes: new Uint8Array(0),
      });
    });

    it("stores a multi-part upload after its last part and serves it back in frame-sized parts", async () => {
      const { a, d, spaceBytes, connect, store, space, metrics } = await withCommits();
      const blob = new Uint8Array(2_500_000).map((_, i) => (i * 31) & 255);
      putAll(a.send, spaceBytes, vectorOf(d, 3), parts(blob, 700_000));
      await a.socket.until(() => a.socket.frames.length === 3);
      expect(a.socket.frames[2]).toEqual({
        type: "snapshot-stored",
        space: spaceBytes,
        vector: vectorOf(d, 3),
      });
      const stored = await store.getSnapshot(space);
      expect(Buffer.from(stored!.bytes).equals(Buffer.from(blob))).toBe(true);
      const b = connect();
      b.send(hello);
      b.send({ type: "snapshot-get", space: spaceBytes });
      await b.socket.until(() => b.socket.frames.length === 4);
      const got = b.socket.frames.slice(1) as Extract<Message, { type: "snapshot" }>[];
      expect(got.map((f) => [f.type, f.part, f.parts])).toEqual([
        ["snapshot", 0, 3],
        ["snapshot", 1, 3],
        ["snapshot", 2, 3],
      ]);
      for (const f of got) expect(f.vector).toEqual(vectorOf(d, 3));
      expect(Buffer.concat(got.map((f) => f.bytes)).equals(Buffer.from(blob))).toBe(true);
      expect(metrics.snapshotsStored).toBe(1);
      expect(metrics.snapshotBytesIn).toBe(blob.length);
      expect(metrics.snapshotBytesOut).toBe(blob.length);
      expect(await metrics.render({ spaces: 1, commits: 3, bytes: 1 })).toContain(
        "shoal_snapshots_stored_total 1",
      );
    });

    it("refuses a stale and a gap snapshot with non-fatal errors, keeping the stored one", async () => {
      const { a, d, spaceBytes, store, space, metrics } = await withCommits();
      putAll(a.send, spaceBytes, vectorOf(d, 2), [Uint8Array.of(1)]);
      await a.socket.until(() => a.socket.frames.length === 3);
      putAll(a.send, spaceBytes, vectorOf(d, 1), [Uint8Array.of(2)]);
      await a.socket.until(() => a.socket.frames.length === 4);
      expect(a.socket.frames[3]).toMatchObject({ type: "error", code: "stale-snapshot", fatal: false });
      putAll(a.send, spaceBytes, vectorOf(d, 4), [Uint8Array.of(3)]);
      await a.socket.until(() => a.socket.frames.length === 5);
      expect(a.socket.frames[4]).toMatchObject({ type: "error", code: "gap", fatal: false });
      expect(a.socket.frames[4]).not.toHaveProperty("seq");
      expect(a.socket.closedWith).toBeUndefined();
      expect([...(await store.getSnapshot(space))!.bytes]).toEqual([1]);
      expect(metrics.snapshotsRefused("stale-snapshot")).toBe(1);
      expect(metrics.snapshotsRefused("gap")).toBe(1);
      // Still serving: an equal vector replaces the snapshot.
      putAll(a.send, spaceBytes, vectorOf(d, 2), [Uint8Array.of(4)]);
      await a.socket.until(() => a.socket.frames.length === 6);
      expect(a.socket.frames[5]).toMatchObject({ type: "snapshot-stored" });
    });

    it("lets a new part 0 discard an unfinished upload, and other frames come between parts", async () => {
      const { a, d, spaceBytes, store, space } = await withCommits();
      const vector = vectorOf(d, 3);
      a.send({ type: "snapshot-put", space: spaceBytes, vector, part: 0, parts: 3, bytes: Uint8Array.of(9) });
      a.send({ type: "snapshot-put", space: spaceBytes, vector, part: 0, parts: 2, bytes: Uint8Array.of(1) });
      a.send({ type: "ping", nonce: 5 });
      a.send({ type: "snapshot-put", space: spaceBytes, vector, part: 1, parts: 2, bytes: Uint8Array.of(2) });
      await a.socket.until(() => a.socket.frames.length === 4);
      expect(a.socket.frames.slice(2).map((f) => f.type)).toEqual(["pong", "snapshot-stored"]);
      expect([...(await store.getSnapshot(space))!.bytes]).toEqual([1, 2]);
    });

    it("closes on parts out of order or with another vector or parts count", async () => {
      const { spaceBytes, connect, metrics } = await setup();
      const d = testDevice();
      const cases: Message[][] = [
        [{ type: "snapshot-put", space: spaceBytes, vector: [], part: 1, parts: 2, bytes: Uint8Array.of(1) }],
        [
          { type: "snapshot-put", space: spaceBytes, vector: [], part: 0, parts: 3, bytes: Uint8Array.of(1) },
          { type: "snapshot-put", space: spaceBytes, vector: [], part: 2, parts: 3, bytes: Uint8Array.of(1) },
        ],
        [
          { type: "snapshot-put", space: spaceBytes, vector: [], part: 0, parts: 3, bytes: Uint8Array.of(1) },
          { type: "snapshot-put", space: spaceBytes, vector: [], part: 1, parts: 2, bytes: Uint8Array.of(1) },
        ],
        [
          { type: "snapshot-put", space: spaceBytes, vector: [], part: 0, parts: 2, bytes: Uint8Array.of(1) },
          {
            type: "snapshot-put",
            space: spaceBytes,
            vector: vectorOf(d, 1),
            part: 1,
            parts: 2,
            bytes: Uint8Array.of(1),
          },
        ],
      ];
      for (const frames of cases) {
        const c = connect();
        c.send(hello);
        for (const f of frames) c.send(f);
        await c.socket.until(() => c.socket.closedWith !== undefined);
        expect(c.socket.closedWith?.code).toBe(1002);
        expect(c.socket.frames.at(-1)).toMatchObject({ type: "error", code: "protocol", fatal: true });
      }
      expect(metrics.rejected("snapshot-sequence")).toBe(cases.length);
      // A snapshot for another space is refused like a pull for one.
      const e = connect();
      e.send(hello);
      e.send({ type: "snapshot-get", space: fromHex(randomId(), 16) });
      await e.socket.until(() => e.socket.closedWith !== undefined);
      expect(e.socket.frames[1]).toMatchObject({ type: "error", code: "protocol" });
      // And a client may not send the relay's snapshot frames.
      const f = connect();
      f.send(hello);
      f.send({ type: "snapshot-stored", space: spaceBytes, vector: [] });
      await f.socket.until(() => f.socket.closedWith !== undefined);
      expect(f.socket.frames[1]).toMatchObject({ type: "error", code: "protocol" });
    });

    it("refuses an upload over the size limit at once, drops its other parts, and stays open", async () => {
      const { a, d, spaceBytes, store, space, metrics } = await withCommits({ maxSnapshotBytes: 1000 });
      putAll(a.send, spaceBytes, vectorOf(d, 3), parts(new Uint8Array(2500), 600));
      a.send({ type: "ping", nonce: 1 });
      await a.socket.until(() => a.socket.frames.some((f) => f.type === "pong"));
      expect(a.socket.frames.slice(2).map((f) => f.type)).toEqual(["error", "pong"]);
      expect(a.socket.frames[2]).toMatchObject({ code: "too-large", fatal: false });
      expect(await store.getSnapshot(space)).toBeUndefined();
      expect(metrics.snapshotsRefused("too-large")).toBe(1);
      putAll(a.send, spaceBytes, vectorOf(d, 3), parts(new Uint8Array(1000), 600));
      await a.socket.until(() => a.socket.frames.length === 5);
      expect(a.socket.frames[4]).toMatchObject({ type: "snapshot-stored" });
    });

    it("refuses a snapshot over the space quota", async () => {
      const { a, d, spaceBytes, store, space } = await withCommits({ quotaBytesPerSpace: 2000 });
      const used = (await store.usage(space)).bytes;
      putAll(a.send, spaceBytes, vectorOf(d, 3), [new Uint8Array(2001 - used)]);
      await a.socket.until(() => a.socket.frames.length === 3);
      expect(a.socket.frames[2]).toMatchObject({ type: "error", code: "quota", fatal: false });
      putAll(a.send, spaceBytes, vectorOf(d, 3), [new Uint8Array(2000 - used)]);
      await a.socket.until(() => a.socket.frames.length === 4);
      expect(a.socket.frames[3]).toMatchObject({ type: "snapshot-stored" });
    });

    it("sends the next part only once the socket drained, and closes a reader that never drains", async () => {
      const { a, d, spaceBytes, connect } = await withCommits({ idleTimeoutMs: 200, maxBufferedBytes: 1000 });
      putAll(a.send, spaceBytes, vectorOf(d, 3), parts(new Uint8Array(3_000_000), 1_000_000));
      await a.socket.until(() => a.socket.frames.length === 3);
      const b = connect();
      b.send(hello);
      await b.socket.until(() => b.socket.frames.length === 1);
      b.socket.buffered = 800; // above half the limit: the first part must wait
      b.send({ type: "snapshot-get", space: spaceBytes });
      await new Promise((r) => setTimeout(r, 30));
      expect(b.socket.frames.length).toBe(1);
      b.socket.buffered = 0;
      await b.socket.until(() => b.socket.frames.length === 4);
      expect(b.socket.frames.slice(1).map((f) => (f as { part: number }).part)).toEqual([0, 1, 2]);
      const c = connect();
      c.send(hello);
      await c.socket.until(() => c.socket.frames.length === 1);
      c.socket.buffered = 800;
      c.send({ type: "snapshot-get", space: spaceBytes });
      // WebSocket pongs keep the connection from the idle close; the stalled download still ends it.
      const heartbeat = setInterval(() => c.session.touch(), 20);
      await c.socket.until(() => c.socket.closedWith !== undefined);
      clearInterval(heartbeat);
      expect(c.socket.closedWith).toEqual({ code: 1008, reason: "slow reader" });
      expect(c.socket.frames.length).toBe(1);
    });
  });
});
