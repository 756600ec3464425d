import { describe, expect, it } from "vitest";
import { decodeMessage, encodeMessage, fromHex, type Message } from "@shoal/client/protocol";
import { hashToken } from "./auth.ts";
import { resolveRelayLimits, type RelayLimits } from "./limits.ts";
import { RelayMetrics } from "./metrics.ts";
import { RelaySession } from "./relay-session.ts";
import { silentLog } from "./relay-log.ts";
import { SpaceHub } from "./space-hub.ts";
import { makeChain, randomId } from "./store/commit-fixtures.ts";
import { MemoryStore } from "./store/memory-store.ts";

/** A socket that records frames and resolves waiters, so tests await messages instead of sleeping. */
class FakeSocket {
  readonly frames: Message[] = [];
  closedWith: { code: number; reason: string } | undefined;
  buffered = 0;
  #waiters: (() => void)[] = [];
  send(bytes: Uint8Array): void {
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

const device = fromHex(randomId(), 16);
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
    expect(a.socket.frames[0]).toEqual({ type: "welcome", version: 1, vector: [] });
    const d = randomId();
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
    const d = randomId();
    const chain = makeChain(space, d, 3);
    a.send({ type: "commits", space: spaceBytes, commits: [chain[0]!, chain[2]!], more: false });
    await a.socket.until(() => a.socket.frames.length === 3);
    expect(a.socket.frames[1]).toMatchObject({ type: "ack", entries: [{ seq: 1 }] });
    expect(a.socket.frames[2]).toMatchObject({ type: "error", code: "gap", fatal: false, seq: 3 });
    expect(a.socket.closedWith).toBeUndefined();
    a.send({ type: "ping", nonce: 9 });
    await a.socket.until(() => a.socket.frames.length === 4);
    expect(a.socket.frames[3]).toEqual({ type: "pong", nonce: 9 });
    expect(metrics.render({ spaces: 1, commits: 1, bytes: 1 })).toContain(
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
    a.send({ type: "hello", minVersion: 2, maxVersion: 4, device });
    await a.socket.until(() => a.socket.closedWith !== undefined);
    expect(a.socket.frames[0]).toMatchObject({ type: "error", code: "version", fatal: true });
    const b = connect();
    b.send(hello);
    b.send({ type: "pull", space: fromHex(randomId()), vector: [], maxBytes: 1 });
    await b.socket.until(() => b.socket.closedWith !== undefined);
    expect(b.socket.frames[1]).toMatchObject({ type: "error", code: "protocol" });
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
    expect(metrics.render({ spaces: 0, commits: 0, bytes: 0 })).toContain(
      'shoal_connections_closed_total{reason="idle"} 1',
    );
  });
});
