import {
  decodeMessage,
  encodeBase64Url,
  encodeMessage,
  MIN_PROTOCOL_VERSION,
  PROTOCOL_VERSION,
  type Message,
} from "../protocol/index.ts";
import type { Transport, TransportConnection, TransportHandlers } from "../transports/transport.ts";
import { claimedTestSpace, type ClaimedTestSpace } from "./claimed-test-space.ts";

/**
 * What one contract case runs against: a transport wired to a fresh server side (a relay session, or
 * anything that answers `hello` with `welcome` and `ping` with `pong` the way a relay does).
 */
export interface TransportContractContext {
  transport: Transport;
  /** The relay's address, when it has one (only used in failure messages). */
  relayUrl?: string;
  /**
   * Makes the server side end every open connection, as a relay going away does: `disconnectAll()` of
   * an in-process relay, stopping a relay process, or the peer closing its data channels.
   */
  dropConnections(): Promise<void>;
  /**
   * False when the server side cannot refuse credentials (a WebRTC peer link carries no token: only
   * devices that opened each other's sealed signals get a channel at all). Cases that need a refusal
   * are then skipped by whoever runs the cases. Defaults to true.
   */
  checksTokens?: boolean;
}

/** One case of the transport contract: no test framework inside, so a browser page can run it too. */
export interface TransportContractCase {
  name: string;
  /** Set when the case needs the server to refuse a wrong token (see `checksTokens`). */
  needsTokenCheck?: boolean;
  /** Resolves when the case passed; rejects with a `TransportContractError` saying what differed. */
  run(ctx: TransportContractContext): Promise<void>;
}

/** What a failed contract case throws. */
export class TransportContractError extends Error {
  override name = "TransportContractError";
}

/** Frames sent each way by the ordering case; the relay under test must allow a burst of more. */
export const CONTRACT_FRAMES = 200;
// Long enough for a stray second `onClose` or late `onOpen` to show up, short enough to keep the suite fast.
const SETTLE_MS = 50;
/**
 * Upper bound of any single wait inside a case, so a transport that never calls back fails with a
 * message instead of hanging the runner (which in a browser page has no per-test timeout of its own).
 */
const WAIT_MS = 10_000;

/**
 * The cases every `Transport` adapter must pass, as plain data: `runTransportContract` (vitest) loops
 * over them, and a browser page can run them over transports that exist only there (WebRTC). The
 * server side must allow a burst of more than `CONTRACT_FRAMES` frames per connection (the relay's
 * default burst is exactly 200: pass a higher rate).
 *
 * @example
 * for (const c of transportContractCases) {
 *   if (c.needsTokenCheck && ctx.checksTokens === false) continue;
 *   await c.run(ctx);
 * }
 */
export const transportContractCases: readonly TransportContractCase[] = [
  {
    name: "opens, and a relay session answers hello with welcome",
    async run(t) {
      const s = await claimedTestSpace();
      const token = s.token;
      const r = recorder();
      const conn = t.transport.connect(s.space, token, r, s.claim);
      await r.until(() => r.opens > 0 || r.closes.length > 0, "open or close");
      equal(r.closes, [], `closed instead of opening (${t.relayUrl ?? t.transport.label})`);
      equal(r.opens, 1, "onOpen calls");
      conn.send(hello());
      await r.until(() => r.frames.length > 0, "the welcome frame");
      const welcome = decodeMessage(r.frames[0]!);
      equal(welcome, { type: "welcome", version: PROTOCOL_VERSION, vector: [] }, "the first frame");
      check(!t.transport.label.includes(encodeBase64Url(token)), "the label must not carry the token");
      conn.close();
    },
  },
  {
    name: `delivers ${CONTRACT_FRAMES} frames each way, in order and intact`,
    async run(t) {
      const { conn, r } = await openSession(t.transport);
      const nonces = Array.from({ length: CONTRACT_FRAMES }, (_, i) => (i * 2654435761) >>> 0);
      for (const nonce of nonces) conn.send(encodeMessage({ type: "ping", nonce }));
      await r.until(() => r.frames.length > CONTRACT_FRAMES || r.closes.length > 0, "all pongs");
      equal(r.closes, [], "closes");
      const pongs = r.frames.slice(1).map((f) => decodeMessage(f));
      equal(
        pongs,
        nonces.map((nonce): Message => ({ type: "pong", nonce })),
        "the pongs",
      );
      conn.close();
    },
  },
  {
    name: "refuses a wrong token for a registered space with 4403, without onOpen",
    needsTokenCheck: true,
    async run(t) {
      const space = await claimedTestSpace();
      const first = await openSession(t.transport, space);
      first.conn.close();
      const r = recorder();
      // The space is registered now: its claim is not looked at, the token decides.
      t.transport.connect(space.space, randomBytes(32), r, space.claim);
      await r.until(() => r.closes.length > 0, "the refusal");
      await sleep(SETTLE_MS);
      equal(r.opens, 0, "onOpen calls");
      equal(r.closes.length, 1, "onClose calls");
      equal(r.closes[0]!.code, 4403, "the close code");
    },
  },
  {
    name: "calls onClose exactly once when the client closes",
    async run(t) {
      const { conn, r } = await openSession(t.transport);
      conn.close("done");
      conn.close("twice");
      await r.until(() => r.closes.length > 0, "onClose");
      await sleep(SETTLE_MS);
      equal(r.closes, [{ reason: "done", code: 1000 }], "closes");
    },
  },
  {
    name: "calls onClose exactly once, without onOpen, when the client closes before opening",
    async run(t) {
      const r = recorder();
      const s = await claimedTestSpace();
      const conn = t.transport.connect(s.space, s.token, r, s.claim);
      conn.close("changed my mind");
      await r.until(() => r.closes.length > 0, "onClose");
      await sleep(SETTLE_MS);
      equal(r.opens, 0, "onOpen calls");
      equal(r.closes.length, 1, "onClose calls");
    },
  },
  {
    name: "calls onClose exactly once when the server goes away",
    async run(t) {
      const { r } = await openSession(t.transport);
      await t.dropConnections();
      await r.until(() => r.closes.length > 0, "onClose");
      await sleep(SETTLE_MS);
      equal(r.closes.length, 1, "onClose calls");
      // 1001 from a relay shutting down gracefully; 1006 if it vanished without a close frame.
      check(
        [1001, 1006].includes(r.closes[0]!.code ?? -1),
        `close code ${r.closes[0]!.code} is not 1001/1006`,
      );
    },
  },
  {
    name: "never throws from send before opening or after closing",
    async run(t) {
      const s = await claimedTestSpace();
      const early = t.transport.connect(s.space, s.token, recorder(), s.claim);
      noThrow(() => early.send(hello()), "send before opening");
      early.close();
      noThrow(() => early.send(hello()), "send after close");

      const a = await openSession(t.transport);
      a.conn.close();
      await a.r.until(() => a.r.closes.length > 0, "onClose");
      noThrow(() => a.conn.send(hello()), "send after onClose");

      const b = await openSession(t.transport);
      await t.dropConnections();
      await b.r.until(() => b.r.closes.length > 0, "onClose after the drop");
      noThrow(() => b.conn.send(hello()), "send after the server went away");
    },
  },
  {
    name: "reports bufferedAmount as a number >= 0 in every state",
    async run(t) {
      const r = recorder();
      const s = await claimedTestSpace();
      const conn = t.transport.connect(s.space, s.token, r, s.claim);
      const amounts = [conn.bufferedAmount];
      await r.until(() => r.opens > 0, "onOpen");
      amounts.push(conn.bufferedAmount);
      conn.send(hello());
      amounts.push(conn.bufferedAmount);
      await r.until(() => r.frames.length > 0, "the welcome frame");
      amounts.push(conn.bufferedAmount);
      conn.close();
      await r.until(() => r.closes.length > 0, "onClose");
      amounts.push(conn.bufferedAmount);
      for (const n of amounts) check(typeof n === "number" && n >= 0, `bufferedAmount ${String(n)}`);
    },
  },
];

interface Recorder extends TransportHandlers {
  opens: number;
  frames: Uint8Array[];
  closes: { reason: string; code: number | undefined }[];
  /** Resolves once `done()` holds, re-checked after every event; rejects after `WAIT_MS`. */
  until(done: () => boolean, what: string): Promise<void>;
}

function recorder(): Recorder {
  const waiters = new Set<() => void>();
  const changed = () => {
    for (const w of [...waiters]) w();
  };
  const r: Recorder = {
    opens: 0,
    frames: [],
    closes: [],
    onOpen() {
      r.opens++;
      changed();
    },
    onMessage(frame) {
      r.frames.push(frame);
      changed();
    },
    onClose(reason, code) {
      r.closes.push({ reason, code });
      changed();
    },
    until: (done, what) =>
      new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(check);
          const seen = `opens ${r.opens}, frames ${r.frames.length}, closes ${JSON.stringify(r.closes)}`;
          reject(new TransportContractError(`timed out after ${WAIT_MS} ms waiting for ${what} (${seen})`));
        }, WAIT_MS);
        const check = () => {
          if (!done()) return;
          waiters.delete(check);
          clearTimeout(timer);
          resolve();
        };
        waiters.add(check);
        check();
      }),
  };
  return r;
}

/** Connects, says hello and waits for `welcome`, so the server session is fully open. */
async function openSession(
  transport: Transport,
  space?: ClaimedTestSpace,
): Promise<{ conn: TransportConnection; r: Recorder }> {
  const s = space ?? (await claimedTestSpace());
  const r = recorder();
  const conn = transport.connect(s.space, s.token, r, s.claim);
  await r.until(() => r.opens > 0 || r.closes.length > 0, "open or close");
  if (r.opens === 0) throw new TransportContractError(`connection refused: ${JSON.stringify(r.closes)}`);
  conn.send(hello());
  await r.until(() => r.frames.length > 0 || r.closes.length > 0, "the welcome frame");
  if (r.frames.length === 0)
    throw new TransportContractError(`closed before welcome: ${JSON.stringify(r.closes)}`);
  equal(decodeMessage(r.frames[0]!).type, "welcome", "the first frame's type");
  return { conn, r };
}

function hello(): Uint8Array {
  return encodeMessage({
    type: "hello",
    minVersion: MIN_PROTOCOL_VERSION,
    maxVersion: PROTOCOL_VERSION,
    device: randomBytes(16),
  });
}

function randomBytes(n: number): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(n));
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function check(ok: boolean, message: string): void {
  if (!ok) throw new TransportContractError(message);
}

function noThrow(fn: () => void, what: string): void {
  try {
    fn();
  } catch (e) {
    throw new TransportContractError(`${what} threw: ${e instanceof Error ? e.message : String(e)}`);
  }
}

/** Deep equality of what the cases compare (plain objects, arrays, byte arrays, primitives). */
function equal(actual: unknown, expected: unknown, what: string): void {
  if (!same(actual, expected)) {
    throw new TransportContractError(`${what}: expected ${show(expected)}, got ${show(actual)}`);
  }
}

function same(a: unknown, b: unknown): boolean {
  if (Object.is(a, b)) return true;
  // Typed arrays compare by content whatever realm made them (frames may cross a structured clone).
  if (ArrayBuffer.isView(a) && ArrayBuffer.isView(b)) {
    const x = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
    const y = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
    return x.length === y.length && x.every((v, i) => v === y[i]);
  }
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((v, i) => same(v, b[i]));
  if (a && b && typeof a === "object" && typeof b === "object" && !Array.isArray(a) && !Array.isArray(b)) {
    const ka = Object.keys(a).filter((k) => (a as Record<string, unknown>)[k] !== undefined);
    const kb = Object.keys(b).filter((k) => (b as Record<string, unknown>)[k] !== undefined);
    return (
      ka.length === kb.length &&
      ka.every((k) => same((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]))
    );
  }
  return false;
}

function show(v: unknown): string {
  const text = JSON.stringify(v, (_k, x: unknown) => (ArrayBuffer.isView(x) ? `bytes(${x.byteLength})` : x));
  return text === undefined ? String(v) : text.length > 300 ? `${text.slice(0, 300)}...` : text;
}

/**
 * The least of a relay session the contract needs, for transports whose far side is not a relay (a
 * peer's data channel in a browser): returns the handler of frames arriving from the client, which
 * answers `hello` with an empty-vector `welcome` and every `ping` with its `pong` through `send`.
 * Other messages are ignored: no case sends them.
 *
 * @example
 * const link = openDataChannelLink(channel, { onOpen() {}, onMessage: (f) => answer(f), onClose() {} });
 * const answer = relayLikeResponder((frame) => link.send(frame));
 */
export function relayLikeResponder(send: (frame: Uint8Array) => void): (frame: Uint8Array) => void {
  return (frame) => {
    const m = decodeMessage(frame);
    if (m.type === "hello") send(encodeMessage({ type: "welcome", version: PROTOCOL_VERSION, vector: [] }));
    else if (m.type === "ping") send(encodeMessage({ type: "pong", nonce: m.nonce }));
  };
}
