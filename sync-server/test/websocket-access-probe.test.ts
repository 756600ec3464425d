// The WebSocket transport as it runs in a browser, where a refused upgrade is only a close 1006: the
// access probe (PROTOCOL.md 1) is what tells a wrong key apart from a relay that is down.
import { WebSocket } from "ws";
import { encodeBase64Url } from "@shoal/client/protocol";
import { afterEach, describe, expect, it, vi } from "vitest";
import { webSocketTransport } from "../../client/src/transports/websocket-transport.ts";
import type { TransportHandlers } from "../../client/src/transports/transport.ts";
import type { SpaceId } from "../../client/src/types.ts";
import { claimedSpace } from "../src/testing/claimed-space.ts";
import { startRelayProcess } from "./relay-process.ts";

/**
 * A browser's WebSocket, as far as the transport can tell: a real `ws` connection underneath, but only
 * the WHATWG surface on top (no `on`), so a refused upgrade surfaces as close 1006 with no status, the
 * way Chromium reports it.
 */
class BrowserLikeSocket {
  binaryType = "blob";
  onopen: ((event: never) => void) | null = null;
  onmessage: ((event: never) => void) | null = null;
  onclose: ((event: { code: number; reason: string }) => void) | null = null;
  onerror: ((event: never) => void) | null = null;
  readonly #inner: WebSocket;

  constructor(url: string, protocols?: string | string[]) {
    this.#inner = new WebSocket(url, protocols);
    // Without an `unexpected-response` listener ws fails the connection like a browser: an error
    // event (which must have a listener), then close 1006.
    this.#inner.on("error", () => {});
    this.#inner.onopen = () => (this.onopen as (() => void) | null)?.();
    this.#inner.onclose = (e) => this.onclose?.({ code: e.code, reason: e.reason });
  }
  get bufferedAmount(): number {
    return this.#inner.bufferedAmount;
  }
  get readyState(): number {
    return this.#inner.readyState;
  }
  send(data: Uint8Array): void {
    this.#inner.send(data);
  }
  close(code?: number, reason?: string): void {
    this.#inner.close(code, reason);
  }
}

/** A socket that fails before opening with 1006 as soon as it is made (a browser's refused upgrade). */
class FailingSocket {
  static made: FailingSocket[] = [];
  binaryType = "blob";
  bufferedAmount = 0;
  readyState = 0;
  onopen: ((event: never) => void) | null = null;
  onmessage: ((event: never) => void) | null = null;
  onclose: ((event: { code: number; reason: string }) => void) | null = null;
  onerror: ((event: never) => void) | null = null;
  constructor(readonly url: string) {
    FailingSocket.made.push(this);
    setTimeout(() => {
      this.readyState = 3;
      this.onclose?.({ code: 1006, reason: "browser says nothing" });
    }, 0);
  }
  send(): void {}
  close(): void {}
}

const space = "00112233445566778899aabbccddeeff" as SpaceId;
const token = new Uint8Array(32).fill(7);
const wrongToken = new Uint8Array(32).fill(8);

/** Connects once and resolves with every `onClose` seen until the first, plus a short grace period. */
async function closesOf(
  transport: ReturnType<typeof webSocketTransport>,
  t: Uint8Array,
  s: SpaceId = space,
  claim?: Uint8Array,
): Promise<[string, number | undefined][]> {
  const closes: [string, number | undefined][] = [];
  let opened = false;
  const handlers: TransportHandlers = {
    onOpen: () => (opened = true),
    onMessage: () => {},
    onClose: (reason, code) => closes.push([reason, code]),
  };
  transport.connect(s, t, handlers, claim);
  await expect.poll(() => closes.length, { timeout: 10_000 }).toBe(1);
  await new Promise((r) => setTimeout(r, 50));
  expect(opened).toBe(false);
  return closes;
}

afterEach(() => {
  vi.unstubAllGlobals();
  FailingSocket.made = [];
});

describe("webSocketTransport access probe (browsers, where a refused upgrade is a bare 1006)", () => {
  it("reports a wrong token as 4403 after asking the real relay, with the relay's text", async () => {
    // Not --quiet: the log lines are checked for the token below.
    const relay = await startRelayProcess(["--store", "memory"]);
    try {
      const claimed = claimedSpace(token);
      const space = claimed.space as SpaceId;
      const claim = claimed.claim;
      const browser = webSocketTransport({ url: relay.url, WebSocket: BrowserLikeSocket });
      // An unknown space offered without its claim: the probe (given no claim either) says why.
      expect(await closesOf(browser, token, space)).toEqual([
        [
          "HTTP 403: This space is not registered here and the connection carries no claim by its creator.",
          4403,
        ],
      ]);
      // Register the space with `token` and its claim over a real connection.
      const owner = webSocketTransport({ url: relay.url, WebSocket });
      let open = false;
      const conn = owner.connect(
        space,
        token,
        { onOpen: () => (open = true), onMessage: () => {}, onClose: () => {} },
        claim,
      );
      await expect.poll(() => open).toBe(true);
      conn.close();

      expect(await closesOf(browser, wrongToken, space)).toEqual([
        ["HTTP 403: Wrong access token for this space.", 4403],
      ]);
      // ws sees the status itself; the relay's text comes from the probe (the upgrade's body is dropped).
      expect(await closesOf(owner, wrongToken, space)).toEqual([
        ["HTTP 403: Wrong access token for this space.", 4403],
      ]);
      // The same refusal without a fetch to ask with: the browser's 1006 is all there is.
      vi.stubGlobal("fetch", undefined);
      const blind = await closesOf(browser, wrongToken, space);
      expect(blind).toHaveLength(1);
      expect(blind[0]![1]).toBe(1006);
      vi.unstubAllGlobals();
      // Only the connections that probed were counted, and no log line holds the token.
      const metrics = await (await fetch(`${relay.url}/metrics`)).text();
      expect(metrics).toContain('shoal_access_probes_total{status="403"} 3');
      expect(relay.stderr()).toContain("access-probe.refused");
      expect(relay.stderr()).not.toContain(encodeBase64Url(wrongToken));
    } finally {
      await relay.stop();
    }
  });

  it("keeps 1006 and its reason when the relay cannot be reached at all", async () => {
    const relay = await startRelayProcess(["--quiet", "--store", "memory"]);
    await relay.stop();
    const closes = await closesOf(
      webSocketTransport({ url: relay.url, WebSocket: BrowserLikeSocket }),
      token,
    );
    expect(closes).toHaveLength(1);
    expect(closes[0]![1]).toBe(1006);
    // And with a socket whose reason is known, the reason is passed on unchanged.
    const failing = await closesOf(webSocketTransport({ url: relay.url, WebSocket: FailingSocket }), token);
    expect(failing).toEqual([["browser says nothing", 1006]]);
  });

  it("asks <http(s) base>/sync/<space>/access with the token as text, and maps 401 and 403 only", async () => {
    const answers = [401, 403, 204, 429, 500];
    const calls: { url: string; init: RequestInit }[] = [];
    vi.stubGlobal("fetch", async (url: string, init: RequestInit) => {
      calls.push({ url, init });
      return new Response(null, { status: answers[calls.length - 1] });
    });
    const transport = webSocketTransport({ url: "wss://relay.test/shoal", WebSocket: FailingSocket });
    const codes: (number | undefined)[] = [];
    for (let i = 0; i < answers.length; i++) codes.push((await closesOf(transport, token))[0]![1]);
    expect(codes).toEqual([4401, 4403, 1006, 1006, 1006]);
    expect(FailingSocket.made[0]!.url).toBe(`wss://relay.test/shoal/sync/${space}`);
    expect(calls[0]!.url).toBe(`https://relay.test/shoal/sync/${space}/access`);
    expect(calls[0]!.init.method).toBe("POST");
    expect(calls[0]!.init.body).toBe(encodeBase64Url(token));
    // No custom header, so a relay on another origin needs no preflight.
    expect(calls[0]!.init.headers).toBeUndefined();
    expect(calls[0]!.init.signal).toBeInstanceOf(AbortSignal);
  });

  it("reports close() during a probe as 1000, once and not synchronously, and ignores the late answer", async () => {
    let answer: (res: Response) => void = () => {};
    let asked = false;
    vi.stubGlobal("fetch", () => {
      asked = true;
      return new Promise<Response>((resolve) => (answer = resolve));
    });
    const closes: (number | undefined)[] = [];
    const conn = webSocketTransport({ url: "ws://relay.test", WebSocket: FailingSocket }).connect(
      space,
      token,
      {
        onOpen: () => {},
        onMessage: () => {},
        onClose: (_reason, code) => closes.push(code),
      },
    );
    await expect.poll(() => asked).toBe(true);
    expect(closes).toEqual([]);
    conn.close();
    expect(closes).toEqual([]);
    await Promise.resolve();
    expect(closes).toEqual([1000]);
    answer(new Response(null, { status: 403 }));
    await new Promise((r) => setTimeout(r, 20));
    expect(closes).toEqual([1000]);
  });

  it("never probes an unreachable relay for a socket that reports the status itself (ws)", async () => {
    const fetchSpy = vi.fn();
    vi.stubGlobal("fetch", fetchSpy);
    const relay = await startRelayProcess(["--quiet", "--store", "memory"]);
    await relay.stop();
    const closes = await closesOf(webSocketTransport({ url: relay.url, WebSocket }), token);
    expect(closes[0]![1]).toBe(1006);
    expect(fetchSpy).not.toHaveBeenCalled();
  });
});
