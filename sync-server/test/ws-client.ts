import WebSocket from "ws";
import {
  decodeMessage,
  encodeMessage,
  fromHex,
  offeredSubprotocols,
  type Message,
} from "@shoal/client/protocol";
import { claimOf } from "../src/testing/claimed-space.ts";

/** A raw protocol client for tests: records every decoded frame and lets a test await one. */
export interface TestClient {
  ws: WebSocket;
  frames: Message[];
  send(m: Message): void;
  sendRaw(bytes: Uint8Array | string): void;
  /** Resolves with the first frame (from index `from`) matching `pred`; rejects if the socket closes first. */
  next<T extends Message["type"]>(type: T, from?: number): Promise<Extract<Message, { type: T }>>;
  closed: Promise<{ code: number; reason: string }>;
  close(): void;
}

/**
 * Opens a WebSocket to `/sync/<space>` offering the token, and `options.claim` or else the claim
 * `claimedSpace` made for the space if it made one (as a real client offers the claim it stores), and
 * resolves once it is open; `options.items` are further subprotocol items (device and invitation
 * proofs). Other `options` go to `ws` (e.g. `localAddress: "127.0.0.2"` to connect
 * from another loopback address).
 *
 * @example
 * const a = await connect(relay.wsUrl, space, token);
 * a.send({ type: "hello", minVersion: 2, maxVersion: 2, device });
 * await a.next("welcome");
 */
export async function connect(
  wsUrl: string,
  space: string,
  token: Uint8Array,
  options?: WebSocket.ClientOptions & { claim?: Uint8Array; items?: string[] },
): Promise<TestClient> {
  const { claim = claimOf(space), items, ...wsOptions } = options ?? {};
  const ws = new WebSocket(`${wsUrl}/sync/${space}`, offeredSubprotocols(token, claim, items), wsOptions);
  const frames: Message[] = [];
  const listeners = new Set<() => void>();
  let closeInfo: { code: number; reason: string } | undefined;
  ws.on("message", (data: Buffer) => {
    frames.push(decodeMessage(new Uint8Array(data)));
    for (const l of [...listeners]) l();
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.on("close", (code, reason) => {
      closeInfo = { code, reason: reason.toString() };
      resolve(closeInfo);
      for (const l of [...listeners]) l();
    }),
  );
  await new Promise<void>((resolve, reject) => {
    ws.once("open", () => resolve());
    ws.once("unexpected-response", (_req, res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => (text += chunk));
      res.on("end", () => reject(new HttpRefusal(res.statusCode ?? 0, text)));
    });
    ws.once("error", reject);
  });
  return {
    ws,
    frames,
    send: (m) => ws.send(encodeMessage(m)),
    sendRaw: (bytes) => ws.send(bytes),
    next: (type, from = 0) =>
      new Promise((resolve, reject) => {
        const check = () => {
          const hit = frames.slice(from).find((f) => f.type === type);
          if (hit) {
            listeners.delete(check);
            resolve(hit as never);
          } else if (closeInfo) {
            listeners.delete(check);
            reject(new Error(`closed (${closeInfo.code} ${closeInfo.reason}) before a ${type} frame`));
          }
        };
        listeners.add(check);
        check();
      }),
    closed,
    close: () => ws.close(),
  };
}

/** The relay answered the upgrade with an HTTP status instead of 101; `text` is its body. */
export class HttpRefusal extends Error {
  constructor(
    readonly status: number,
    readonly text = "",
  ) {
    super(`HTTP ${status}`);
  }
}

/** Connects and completes hello/welcome. */
export async function connectReady(
  wsUrl: string,
  space: string,
  token: Uint8Array,
  device: string,
  options?: WebSocket.ClientOptions & { claim?: Uint8Array; items?: string[] },
): Promise<TestClient> {
  const c = await connect(wsUrl, space, token, options);
  c.send({ type: "hello", minVersion: 2, maxVersion: 2, device: fromHex(device, 16) });
  await c.next("welcome");
  return c;
}

/**
 * Sends one `commits` frame (`replace` as asked) and resolves with the relay's ack, and the error
 * that followed it if there was one (a ping round trip after the ack proves there was none).
 *
 * @example
 * const { ack, error } = await uploadCommits(c, space, [commit]);
 */
export async function uploadCommits(
  c: TestClient,
  space: string,
  commits: Uint8Array[],
  replace = false,
): Promise<{ ack: Extract<Message, { type: "ack" }>; error?: Extract<Message, { type: "error" }> }> {
  const from = c.frames.length;
  c.send({ type: "commits", space: fromHex(space, 16), commits, more: false, ...(replace && { replace }) });
  const ack = await c.next("ack", from);
  // The error follows the ack at once when there is one; a ping round trip proves there is none.
  c.send({ type: "ping", nonce: from + 1_000_000 });
  await c.next("pong", from);
  const error = c.frames.slice(from).find((f) => f.type === "error");
  return error ? { ack, error } : { ack };
}
