import { afterEach, describe, expect, it } from "vitest";
import { inProcessRelay } from "../../../sync-server/src/testing/in-process-relay.ts";
import { runTransportContract } from "../testing/transport-contract.ts";
import type { TransportHandlers } from "./transport.ts";
import type { SpaceId } from "../types.ts";
import { broadcastChannelServer, broadcastChannelTransport } from "./broadcast-channel-transport.ts";
import type { MemoryServerEnd } from "./memory-transport.ts";

// The relay's default burst is 200 frames; the contract sends hello plus 200 pings in one go.
const limits = { messagesPerSecond: 1000, messageBurst: 2000 };
let channels = 0;
/** A channel name per test, so a late message of one test can never reach the next. */
const freshChannel = () => `shoal-test-${process.pid}-${++channels}`;

runTransportContract("BroadcastChannel transport over the in-process relay", async () => {
  const relay = inProcessRelay({ limits });
  const channel = freshChannel();
  const server = broadcastChannelServer({ channel, accept: relay.accept });
  return {
    transport: broadcastChannelTransport({ channel }),
    dropConnections: async () => relay.disconnectAll(),
    teardown: async () => {
      server.close();
      await relay.close();
    },
  };
});

runTransportContract("BroadcastChannel transport, server closing its side", async () => {
  const relay = inProcessRelay({ limits });
  const channel = freshChannel();
  let server = broadcastChannelServer({ channel, accept: relay.accept });
  return {
    transport: broadcastChannelTransport({ channel }),
    // The whole server goes (a tab closing): every client hears 1001, and a new server takes over.
    dropConnections: async () => {
      server.close();
      server = broadcastChannelServer({ channel, accept: relay.accept });
    },
    teardown: async () => {
      server.close();
      await relay.close();
    },
  };
});

const space = "00112233445566778899aabbccddeeff" as SpaceId;
const token = new Uint8Array(32).fill(7);

interface Events extends TransportHandlers {
  log: string[];
  until(n: number): Promise<void>;
}

/** Handlers that log every event; `until(n)` waits for n events (the test's own timeout bounds it). */
function events(): Events {
  const log: string[] = [];
  let wake = () => {};
  const push = (e: string) => {
    log.push(e);
    wake();
  };
  return {
    log,
    onOpen: () => push("open"),
    onMessage: (f) => push(`frame ${Array.from(f).join(",")}`),
    onClose: (reason, code) => push(`close ${code} ${reason}`),
    until: (n) =>
      new Promise<void>((resolve) => {
        wake = () => log.length >= n && resolve();
        wake();
      }),
  };
}

describe("broadcastChannelTransport", () => {
  const cleanups: (() => void)[] = [];
  afterEach(() => {
    for (const c of cleanups.splice(0)) c();
  });

  it("copies frames both ways, counts unacknowledged bytes, and serves many clients on one channel", async () => {
    const channel = freshChannel();
    const ends: MemoryServerEnd[] = [];
    const server = broadcastChannelServer({
      channel,
      accept: (_s, _t, end) => {
        ends.push(end);
        // An echo server that tags each frame with its connection's index.
        const index = ends.length;
        end.onMessage = (f) => end.send(new Uint8Array([index, ...f]));
      },
    });
    cleanups.push(() => server.close());
    const transport = broadcastChannelTransport({ channel });
    const a = events();
    const b = events();
    const ca = transport.connect(space, token, a);
    const cb = transport.connect(space, token, b);
    expect(a.log).toEqual([]);
    await Promise.all([a.until(1), b.until(1)]);
    expect(server.connections).toBe(2);

    const sent = new Uint8Array([1, 2, 3]);
    ca.send(sent);
    expect(ca.bufferedAmount).toBe(3);
    sent[0] = 9;
    cb.send(new Uint8Array([4]));
    await Promise.all([a.until(2), b.until(2)]);
    expect(a.log[1]).toMatch(/^frame \d,1,2,3$/);
    expect(b.log[1]).toMatch(/^frame \d,4$/);
    expect(a.log[1]!.split(",")[0]).not.toBe(b.log[1]!.split(",")[0]);
    // The ack follows the frame's delivery; the next round trip is certainly behind it.
    ca.send(new Uint8Array([5]));
    await a.until(3);
    expect(ca.bufferedAmount).toBe(0);

    ca.close("bye");
    cb.close();
    await Promise.all([a.until(4), b.until(3)]);
    expect(a.log[3]).toBe("close 1000 bye");
  });

  it("refuses before opening when accept closes, and closes with 1011 when accept throws", async () => {
    const refusing = freshChannel();
    const throwing = freshChannel();
    const s1 = broadcastChannelServer({ channel: refusing, accept: (_s, _t, end) => end.close(4401, "no") });
    const s2 = broadcastChannelServer({
      channel: throwing,
      accept: () => {
        throw new Error("boom");
      },
    });
    cleanups.push(
      () => s1.close(),
      () => s2.close(),
    );
    const a = events();
    const b = events();
    broadcastChannelTransport({ channel: refusing }).connect(space, token, a);
    broadcastChannelTransport({ channel: throwing }).connect(space, token, b);
    await Promise.all([a.until(1), b.until(1)]);
    expect(a.log).toEqual(["close 4401 no"]);
    expect(b.log).toEqual(["close 1011 accept failed"]);
  });

  it("tells the server when the client closes, and the server's onClose comes once", async () => {
    const channel = freshChannel();
    const serverSide: string[] = [];
    let closed: () => void = () => {};
    const serverClosed = new Promise<void>((resolve) => (closed = resolve));
    const server = broadcastChannelServer({
      channel,
      accept: (_s, _t, end) => {
        end.onMessage = (f) => serverSide.push(`frame ${f[0]}`);
        end.onClose = (code, reason) => {
          serverSide.push(`close ${code} ${reason}`);
          closed();
        };
      },
    });
    cleanups.push(() => server.close());
    const e = events();
    const conn = broadcastChannelTransport({ channel }).connect(space, token, e);
    await e.until(1);
    conn.send(new Uint8Array([1]));
    conn.close("bye");
    conn.send(new Uint8Array([2]));
    await serverClosed;
    expect(serverSide).toEqual(["frame 1", "close 1000 bye"]);
    expect(server.connections).toBe(0);
  });

  it("closes with 1006 when no server answers, or when the server goes silent", async () => {
    const heartbeatMs = 10;
    const nobody = events();
    broadcastChannelTransport({ channel: freshChannel(), heartbeatMs }).connect(space, token, nobody);

    // A "server" that opens the connection and then says nothing more, as a crashed tab would.
    const channel = freshChannel();
    const mute = new BroadcastChannel(channel);
    cleanups.push(() => mute.close());
    mute.onmessage = (event: MessageEvent<{ to: string; id: string; t: string }>) => {
      if (event.data.t === "connect") mute.postMessage({ to: "client", id: event.data.id, t: "open" });
    };
    const silent = events();
    broadcastChannelTransport({ channel, heartbeatMs }).connect(space, token, silent);

    await Promise.all([nobody.until(1), silent.until(2)]);
    expect(nobody.log).toEqual(["close 1006 no server answered"]);
    expect(silent.log).toEqual(["open", "close 1006 the server vanished"]);
  });

  it("gives up a client that went silent: the server end closes with 1006", async () => {
    const channel = freshChannel();
    let closed: (code: number) => void = () => {};
    const serverClosed = new Promise<number>((resolve) => (closed = resolve));
    const server = broadcastChannelServer({
      channel,
      heartbeatMs: 10,
      accept: (_s, _t, end) => {
        end.onClose = (code) => closed(code);
      },
    });
    cleanups.push(() => server.close());
    // A client that connects and then never beats.
    const mute = new BroadcastChannel(channel);
    cleanups.push(() => mute.close());
    mute.postMessage({ to: "server", id: "mute", t: "connect", space, token });
    expect(await serverClosed).toBe(1006);
    expect(server.connections).toBe(0);
  });
});
