import { describe, expect, it } from "vitest";
import { inProcessRelay } from "../../../sync-server/src/testing/in-process-relay.ts";
import { runTransportContract } from "../testing/transport-contract.ts";
import type { SpaceId } from "../types.ts";
import { memoryTransport, type MemoryServerEnd } from "./memory-transport.ts";

// The relay's default burst is 200 frames; the contract sends hello plus 200 pings in one go.
const limits = { messagesPerSecond: 1000, messageBurst: 2000 };

runTransportContract("memory transport over the in-process relay", async () => {
  const relay = inProcessRelay({ limits });
  return {
    transport: memoryTransport(relay.accept),
    dropConnections: async () => relay.disconnectAll(),
    teardown: () => relay.close(),
  };
});

runTransportContract("memory transport with latency", async () => {
  const relay = inProcessRelay({ limits });
  return {
    transport: memoryTransport(relay.accept, { latencyMs: 1 }),
    dropConnections: async () => relay.disconnectAll(),
    teardown: () => relay.close(),
  };
});

const space = "00112233445566778899aabbccddeeff" as SpaceId;
const token = new Uint8Array(32).fill(7);
const tick = () => new Promise((resolve) => setTimeout(resolve, 0));

describe("memoryTransport", () => {
  it("delivers asynchronously, never inside send, and copies frames both ways", async () => {
    let server: MemoryServerEnd | undefined;
    const atServer: Uint8Array[] = [];
    const atClient: Uint8Array[] = [];
    const transport = memoryTransport((_space, _token, end) => {
      server = end;
      end.onMessage = (frame) => atServer.push(frame);
    });
    let opened = false;
    const conn = transport.connect(space, token, {
      onOpen: () => (opened = true),
      onMessage: (frame) => atClient.push(frame),
      onClose: () => {},
    });
    expect(opened).toBe(false);
    await tick();
    expect(opened).toBe(true);

    const sent = new Uint8Array([1, 2, 3]);
    conn.send(sent);
    expect(atServer).toHaveLength(0);
    expect(conn.bufferedAmount).toBe(3);
    sent[0] = 9;
    await tick();
    expect(atServer).toEqual([new Uint8Array([1, 2, 3])]);
    expect(conn.bufferedAmount).toBe(0);

    const reply = new Uint8Array([4, 5]);
    server!.send(reply);
    expect(server!.bufferedAmount).toBe(2);
    reply[0] = 0;
    await tick();
    expect(atClient).toEqual([new Uint8Array([4, 5])]);
  });

  it("refuses before opening when accept closes, and closes with 1011 when accept throws", async () => {
    const closes: [string, number | undefined][] = [];
    let opens = 0;
    const handlers = {
      onOpen: () => opens++,
      onMessage: () => {},
      onClose: (reason: string, code?: number) => closes.push([reason, code]),
    };
    memoryTransport(async (_s, _t, end) => end.close(4401, "no")).connect(space, token, handlers);
    memoryTransport(() => {
      throw new Error("boom");
    }).connect(space, token, handlers);
    await tick();
    expect(opens).toBe(0);
    expect(closes).toEqual([
      ["no", 4401],
      ["accept failed", 1011],
    ]);
  });

  it("holds frames the server sends during accept until after onOpen, and keeps order with close", async () => {
    const events: string[] = [];
    const transport = memoryTransport(async (_s, _t, end) => {
      end.send(new Uint8Array([1]));
      await Promise.resolve();
      end.send(new Uint8Array([2]));
      setTimeout(() => {
        end.send(new Uint8Array([3]));
        end.close(1000, "bye");
        end.send(new Uint8Array([4]));
      }, 0);
    });
    transport.connect(space, token, {
      onOpen: () => events.push("open"),
      onMessage: (f) => events.push(`frame ${f[0]}`),
      onClose: (reason, code) => events.push(`close ${code} ${reason}`),
    });
    await tick();
    await tick();
    expect(events).toEqual(["open", "frame 1", "frame 2", "frame 3", "close 1000 bye"]);
  });

  it("lets the server receive frames sent before the client's close, then onClose", async () => {
    const events: string[] = [];
    const transport = memoryTransport((_s, _t, end) => {
      end.onMessage = (f) => events.push(`frame ${f[0]}`);
      end.onClose = (code, reason) => events.push(`close ${code} ${reason}`);
    });
    const conn = transport.connect(space, token, {
      onOpen: () => {},
      onMessage: () => {},
      onClose: () => {},
    });
    await tick();
    conn.send(new Uint8Array([1]));
    conn.close("bye");
    conn.send(new Uint8Array([2]));
    await tick();
    expect(events).toEqual(["frame 1", "close 1000 bye"]);
  });
});

describe("inProcessRelay", () => {
  it("refuses a malformed token with 4401 and a bad space id with 4400, and counts them", async () => {
    const relay = inProcessRelay();
    const transport = memoryTransport(relay.accept);
    const codes: (number | undefined)[] = [];
    const handlers = {
      onOpen: () => {},
      onMessage: () => {},
      onClose: (_r: string, c?: number) => codes.push(c),
    };
    transport.connect(space, new Uint8Array(3), handlers);
    transport.connect("not-hex" as SpaceId, token, handlers);
    await tick();
    await tick();
    expect(codes.sort()).toEqual([4400, 4401]);
    const text = await relay.metrics.render(await relay.store.stats());
    expect(text).toContain("401");
    expect(text).toContain("400");
    await relay.close();
  });
});
