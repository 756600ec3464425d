import type { AddressInfo } from "node:net";
import { WebSocket, WebSocketServer } from "ws";
import { offeredSubprotocols } from "@shoal/client/protocol";
import { describe, expect, it } from "vitest";
import { webSocketTransport } from "../../client/src/transports/websocket-transport.ts";
import { runTransportContract } from "../../client/src/testing/transport-contract.ts";
import type { SpaceId } from "../../client/src/types.ts";
import { startRelayProcess } from "./relay-process.ts";

// A relay process per case: the "server goes away" case stops it. `--rate 1000` gives a burst of
// 2000 frames; the default burst (200) is one short of the contract's hello plus 200 pings.
runTransportContract("WebSocket transport against the relay process", async () => {
  const relay = await startRelayProcess(["--quiet", "--store", "memory", "--rate", "1000"]);
  return {
    transport: webSocketTransport({ url: relay.url, WebSocket }),
    relayUrl: relay.wsUrl,
    dropConnections: async () => {
      await relay.stop("SIGTERM");
    },
    teardown: async () => {
      await relay.stop("SIGTERM");
    },
  };
});

describe("webSocketTransport", () => {
  const space = "00112233445566778899aabbccddeeff" as SpaceId;

  it("accepts http(s) and ws(s) bases, with or without /sync, and never puts the token in the label", () => {
    const label = (url: string) => webSocketTransport({ url, WebSocket }).label;
    expect(label("ws://127.0.0.1:8787")).toBe("ws://127.0.0.1:8787");
    expect(label("http://127.0.0.1:8787/")).toBe("ws://127.0.0.1:8787");
    expect(label("https://relay.example.org/sync")).toBe("wss://relay.example.org");
    expect(label("wss://example.org/shoal/sync/")).toBe("wss://example.org/shoal");
    expect(() => label("ftp://example.org")).toThrow(TypeError);
    expect(() => label("ws://example.org/?token=x")).toThrow(TypeError);
  });

  it("opens <base>/sync/<space> offering the token as a subprotocol, and closes a malformed token with 4401", async () => {
    const seen: { url: string; protocols: string | string[] | undefined }[] = [];
    class Spy extends WebSocket {
      constructor(url: string, protocols?: string | string[]) {
        seen.push({ url, protocols });
        super("ws://127.0.0.1:9", protocols);
      }
    }
    const transport = webSocketTransport({ url: "http://relay.test/sync", WebSocket: Spy });
    const closes: (number | undefined)[] = [];
    const handlers = {
      onOpen: () => {},
      onMessage: () => {},
      onClose: (_r: string, c?: number) => closes.push(c),
    };
    transport.connect(space, new Uint8Array(32).fill(1), handlers).close();
    transport.connect(space, new Uint8Array(3), handlers);
    await new Promise((r) => setTimeout(r, 20));
    expect(seen).toEqual([
      { url: `ws://relay.test/sync/${space}`, protocols: offeredSubprotocols(new Uint8Array(32).fill(1)) },
    ]);
    expect(seen[0]!.url).not.toContain("shoal-token");
    expect(closes).toEqual([1000, 4401]);
  });

  it("delivers binary frames as Uint8Array and closes with 1003 on a text frame", async () => {
    const server = new WebSocketServer({ port: 0, host: "127.0.0.1", handleProtocols: () => "shoal.1" });
    server.on("connection", (ws) => {
      ws.send(new Uint8Array([1, 2, 3]));
      ws.send("text is not allowed");
    });
    await new Promise((r) => server.once("listening", r));
    const { port } = server.address() as AddressInfo;
    const frames: Uint8Array[] = [];
    const closes: [string, number | undefined][] = [];
    webSocketTransport({ url: `http://127.0.0.1:${port}`, WebSocket }).connect(space, new Uint8Array(32), {
      onOpen: () => {},
      onMessage: (f) => frames.push(f),
      onClose: (reason, code) => closes.push([reason, code]),
    });
    await expect.poll(() => closes.length).toBe(1);
    await new Promise((r) => setTimeout(r, 50));
    expect(frames).toEqual([new Uint8Array([1, 2, 3])]);
    expect(frames[0]).toBeInstanceOf(Uint8Array);
    expect(closes).toHaveLength(1);
    expect(closes[0]![1]).toBe(1003);
    for (const c of server.clients) c.terminate();
    await new Promise((r) => server.close(r));
  });

  it("hands no frame to a socket that is closing, even before its close event (browsers log each as an error)", () => {
    // A socket driven by hand: the window between the relay's close frame and the close event is
    // otherwise a race that a real server cannot hold open on demand.
    const sockets: HandDriven[] = [];
    class HandDriven {
      binaryType = "blob";
      bufferedAmount = 0;
      readyState = 0;
      sent: Uint8Array[] = [];
      onopen: ((event: never) => void) | null = null;
      onmessage: ((event: never) => void) | null = null;
      onclose: ((event: { code: number; reason: string }) => void) | null = null;
      onerror: ((event: never) => void) | null = null;
      constructor() {
        sockets.push(this);
      }
      // Like a browser: no exception when not open (the frame is dropped with a console error).
      send(data: Uint8Array): void {
        this.sent.push(data);
      }
      close(): void {
        this.readyState = 2;
      }
    }
    const closes: (number | undefined)[] = [];
    const conn = webSocketTransport({ url: "ws://relay.test", WebSocket: HandDriven }).connect(
      space,
      new Uint8Array(32),
      { onOpen: () => {}, onMessage: () => {}, onClose: (_r, code) => closes.push(code) },
    );
    const socket = sockets[0]!;
    conn.send(new Uint8Array([0]));
    socket.readyState = 1;
    (socket.onopen as () => void)();
    conn.send(new Uint8Array([1]));
    socket.readyState = 2; // the relay's close frame arrived; the close event has not yet
    conn.send(new Uint8Array([2]));
    socket.readyState = 3;
    socket.onclose!({ code: 1001, reason: "going away" });
    conn.send(new Uint8Array([3]));
    expect(socket.sent).toEqual([new Uint8Array([1])]);
    expect(closes).toEqual([1001]);
  });
});
