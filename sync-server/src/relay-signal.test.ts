// The relay's side of WebRTC signalling (PROTOCOL.md, "Signalling"): `signal` frames are forwarded
// only between connections of the same space that completed hello, never stored, rate limited, counted.
import { describe, expect, it } from "vitest";
import {
  SIGNAL_BROADCAST,
  decodeMessage,
  encodeMessage,
  fromHex,
  type Message,
} from "@shoal/client/protocol";
import { hashToken } from "./auth.ts";
import { resolveRelayLimits } from "./limits.ts";
import { RelayMetrics } from "./metrics.ts";
import { RelaySession } from "./relay-session.ts";
import { silentLog } from "./relay-log.ts";
import { SpaceHub } from "./space-hub.ts";
import { randomId } from "./store/commit-fixtures.ts";
import { MemoryStore } from "./store/memory-store.ts";

/** Records frames; `until` waits for a condition instead of sleeping. */
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

async function setup() {
  const store = new MemoryStore();
  const hub = new SpaceHub();
  const metrics = new RelayMetrics();
  const spaces = [randomId(), randomId()];
  for (const s of spaces) await store.registerSpace(s, hashToken(new Uint8Array(32)));
  /** A connection to `space` that has completed hello as a fresh random device. */
  const connect = async (space = spaces[0]!) => {
    const socket = new FakeSocket();
    const session = new RelaySession({
      space,
      socket,
      store,
      hub,
      metrics,
      limits: resolveRelayLimits({}),
      log: silentLog,
    });
    const device = fromHex(randomId(), 16);
    const send = (m: Message) => session.receive(encodeMessage(m));
    send({ type: "hello", minVersion: 2, maxVersion: 2, device });
    await socket.until(() => socket.frames.length === 1);
    return { socket, session, device, send, spaceBytes: fromHex(space, 16) };
  };
  return { store, metrics, spaces, connect };
}

const signals = (s: FakeSocket) => s.frames.filter((f) => f.type === "signal");
/** Lets the sessions' frame queues run (each frame is handled in a promise chain). */
const settle = () => new Promise<void>((r) => setTimeout(r, 0));

describe("relay signalling", () => {
  it("forwards a broadcast to the other connections of the space only, and a directed signal to its device only", async () => {
    const { connect, metrics, store, spaces } = await setup();
    const a = await connect();
    const b = await connect();
    const c = await connect();
    const other = await connect(spaces[1]);
    const payload = Uint8Array.of(1, 2, 3);
    a.send({
      type: "signal",
      space: a.spaceBytes,
      from: a.device,
      to: new Uint8Array(SIGNAL_BROADCAST),
      payload,
    });
    await b.socket.until(() => signals(b.socket).length === 1);
    await c.socket.until(() => signals(c.socket).length === 1);
    expect(signals(b.socket)[0]).toEqual({
      type: "signal",
      space: a.spaceBytes,
      from: a.device,
      to: new Uint8Array(16),
      payload,
    });
    a.send({ type: "signal", space: a.spaceBytes, from: a.device, to: c.device, payload });
    await c.socket.until(() => signals(c.socket).length === 2);
    await settle();
    expect(signals(a.socket)).toHaveLength(0);
    expect(signals(b.socket)).toHaveLength(1);
    expect(signals(other.socket)).toHaveLength(0);
    expect(metrics.signalsForwarded).toBe(3);
    // Nothing was stored: the space still holds no commit and no snapshot.
    expect((await store.vector(spaces[0]!)).size).toBe(0);
    expect(await store.getSnapshot(spaces[0]!)).toBeUndefined();
    expect(await metrics.render({ spaces: 2, commits: 0, bytes: 0 })).toContain(
      "shoal_signals_forwarded_total 3",
    );
  });

  it("drops a signal nobody is addressed by, and counts it", async () => {
    const { connect, metrics } = await setup();
    const a = await connect();
    await connect();
    a.send({
      type: "signal",
      space: a.spaceBytes,
      from: a.device,
      to: fromHex(randomId(), 16),
      payload: new Uint8Array(0),
    });
    await settle();
    expect(metrics.signalsDropped("no-peer")).toBe(1);
    expect(metrics.signalsForwarded).toBe(0);
  });

  it("refuses a signal on behalf of another device (fatal protocol error)", async () => {
    const { connect } = await setup();
    const a = await connect();
    const b = await connect();
    a.send({ type: "signal", space: a.spaceBytes, from: b.device, to: b.device, payload: new Uint8Array(0) });
    await a.socket.until(() => a.socket.closedWith !== undefined);
    expect(a.socket.frames.at(-1)).toMatchObject({ type: "error", code: "protocol", fatal: true });
    expect(a.socket.closedWith?.code).toBe(1002);
    expect(signals(b.socket)).toHaveLength(0);
  });

  it("refuses a signal before hello", async () => {
    const { connect, spaces, store, metrics } = await setup();
    await connect();
    const socket = new FakeSocket();
    const hub = new SpaceHub();
    const session = new RelaySession({
      space: spaces[0]!,
      socket,
      store,
      hub,
      metrics,
      limits: resolveRelayLimits({}),
      log: silentLog,
    });
    const device = fromHex(randomId(), 16);
    session.receive(
      encodeMessage({
        type: "signal",
        space: fromHex(spaces[0]!, 16),
        from: device,
        to: new Uint8Array(16),
        payload: new Uint8Array(0),
      }),
    );
    await socket.until(() => socket.closedWith !== undefined);
    expect(socket.frames[0]).toMatchObject({ type: "error", code: "protocol", fatal: true });
  });

  it("rate-limits signals per connection (burst 60) without closing it", async () => {
    const { connect, metrics } = await setup();
    const a = await connect();
    const b = await connect();
    for (let i = 0; i < 80; i++)
      a.send({
        type: "signal",
        space: a.spaceBytes,
        from: a.device,
        to: b.device,
        payload: Uint8Array.of(i),
      });
    a.send({ type: "ping", nonce: 9 });
    await a.socket.until(() => a.socket.frames.some((f) => f.type === "pong"));
    // The bucket refills at 20/s while the frames are handled, so a few more than the burst may pass.
    const got = signals(b.socket).length;
    expect(got).toBeGreaterThanOrEqual(60);
    expect(got).toBeLessThan(80);
    expect(metrics.signalsDropped("rate-limited")).toBe(80 - got);
    expect(a.socket.closedWith).toBeUndefined();
  });

  it("does not send signals to a reader over the slow-reader limit", async () => {
    const { connect, metrics } = await setup();
    const a = await connect();
    const b = await connect();
    b.socket.buffered = Number.MAX_SAFE_INTEGER;
    a.send({ type: "signal", space: a.spaceBytes, from: a.device, to: b.device, payload: new Uint8Array(0) });
    await settle();
    expect(signals(b.socket)).toHaveLength(0);
    expect(metrics.signalsDropped("slow-reader")).toBe(1);
  });
});
