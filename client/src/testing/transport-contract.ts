import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  decodeMessage,
  encodeBase64Url,
  encodeMessage,
  MIN_PROTOCOL_VERSION,
  PROTOCOL_VERSION,
  toHex,
  type Message,
} from "../protocol/index.ts";
import type { Transport, TransportConnection, TransportHandlers } from "../sync/transport.ts";
import type { SpaceId } from "../types.ts";

/** What one contract case runs against: a transport wired to a fresh relay. */
export interface TransportContractSetup {
  transport: Transport;
  /** The relay's address, when it has one (only used in failure messages). */
  relayUrl?: string;
  /**
   * Makes the server side end every open connection, as a relay going away does: `disconnectAll()` of
   * an in-process relay, or stopping a relay process.
   */
  dropConnections(): Promise<void>;
  /** Releases the relay and anything else `setup` started. */
  teardown(): Promise<void>;
}

const FRAMES = 200;
// Long enough for a stray second `onClose` or late `onOpen` to show up, short enough to keep the suite fast.
const SETTLE_MS = 50;

/**
 * The cases every `Transport` adapter must pass, run against a real relay session (in-process or a
 * relay process). `setup` runs before each case; the relay it starts must allow a burst of more than
 * 200 frames per connection (the relay's default burst is exactly 200: pass a higher rate).
 *
 * @example
 * runTransportContract("memory transport", async () => {
 *   const relay = inProcessRelay({ limits: { messagesPerSecond: 1000, messageBurst: 2000 } });
 *   return {
 *     transport: memoryTransport(relay.accept),
 *     dropConnections: async () => relay.disconnectAll(),
 *     teardown: () => relay.close(),
 *   };
 * });
 */
export function runTransportContract(name: string, setup: () => Promise<TransportContractSetup>): void {
  describe(`transport contract: ${name}`, () => {
    let t: TransportContractSetup;
    beforeEach(async () => {
      t = await setup();
    });
    afterEach(async () => {
      await t.teardown();
    });

    it("opens, and a relay session answers hello with welcome", async () => {
      const token = randomBytes(32);
      const r = recorder();
      const conn = t.transport.connect(randomSpace(), token, r);
      await r.until(() => r.opens > 0 || r.closes.length > 0);
      expect(r.closes, `closed instead of opening (${t.relayUrl ?? t.transport.label})`).toEqual([]);
      expect(r.opens).toBe(1);
      conn.send(hello());
      await r.until(() => r.frames.length > 0);
      const welcome = decodeMessage(r.frames[0]!);
      expect(welcome).toMatchObject({ type: "welcome", version: PROTOCOL_VERSION, vector: [] });
      expect(t.transport.label).not.toContain(encodeBase64Url(token));
      conn.close();
    });

    it(`delivers ${FRAMES} frames each way, in order and intact`, async () => {
      const { conn, r } = await openSession(t.transport);
      const nonces = Array.from({ length: FRAMES }, (_, i) => (i * 2654435761) >>> 0);
      for (const nonce of nonces) conn.send(encodeMessage({ type: "ping", nonce }));
      await r.until(() => r.frames.length > FRAMES || r.closes.length > 0);
      expect(r.closes).toEqual([]);
      const pongs = r.frames.slice(1).map((f) => decodeMessage(f));
      expect(pongs).toEqual(nonces.map((nonce): Message => ({ type: "pong", nonce })));
      conn.close();
    });

    it("refuses a wrong token for a registered space with 4403, without onOpen", async () => {
      const space = randomSpace();
      const first = await openSession(t.transport, space);
      first.conn.close();
      const r = recorder();
      t.transport.connect(space, randomBytes(32), r);
      await r.until(() => r.closes.length > 0);
      await sleep(SETTLE_MS);
      expect(r.opens).toBe(0);
      expect(r.closes).toHaveLength(1);
      expect(r.closes[0]!.code).toBe(4403);
    });

    it("calls onClose exactly once when the client closes", async () => {
      const { conn, r } = await openSession(t.transport);
      conn.close("done");
      conn.close("twice");
      await r.until(() => r.closes.length > 0);
      await sleep(SETTLE_MS);
      expect(r.closes).toEqual([{ reason: "done", code: 1000 }]);
    });

    it("calls onClose exactly once, without onOpen, when the client closes before opening", async () => {
      const r = recorder();
      const conn = t.transport.connect(randomSpace(), randomBytes(32), r);
      conn.close("changed my mind");
      await r.until(() => r.closes.length > 0);
      await sleep(SETTLE_MS);
      expect(r.opens).toBe(0);
      expect(r.closes).toHaveLength(1);
    });

    it("calls onClose exactly once when the server goes away", async () => {
      const { r } = await openSession(t.transport);
      await t.dropConnections();
      await r.until(() => r.closes.length > 0);
      await sleep(SETTLE_MS);
      expect(r.closes).toHaveLength(1);
      // 1001 from a relay shutting down gracefully; 1006 if it vanished without a close frame.
      expect([1001, 1006]).toContain(r.closes[0]!.code);
    });

    it("never throws from send before opening or after closing", async () => {
      const early = t.transport.connect(randomSpace(), randomBytes(32), recorder());
      expect(() => early.send(hello())).not.toThrow();
      early.close();
      expect(() => early.send(hello())).not.toThrow();

      const a = await openSession(t.transport);
      a.conn.close();
      await a.r.until(() => a.r.closes.length > 0);
      expect(() => a.conn.send(hello())).not.toThrow();

      const b = await openSession(t.transport);
      await t.dropConnections();
      await b.r.until(() => b.r.closes.length > 0);
      expect(() => b.conn.send(hello())).not.toThrow();
    });

    it("reports bufferedAmount as a number >= 0 in every state", async () => {
      const r = recorder();
      const conn = t.transport.connect(randomSpace(), randomBytes(32), r);
      const amounts = [conn.bufferedAmount];
      await r.until(() => r.opens > 0);
      amounts.push(conn.bufferedAmount);
      conn.send(hello());
      amounts.push(conn.bufferedAmount);
      await r.until(() => r.frames.length > 0);
      amounts.push(conn.bufferedAmount);
      conn.close();
      await r.until(() => r.closes.length > 0);
      amounts.push(conn.bufferedAmount);
      for (const n of amounts) {
        expect(typeof n).toBe("number");
        expect(n).toBeGreaterThanOrEqual(0);
      }
    });
  });
}

interface Recorder extends TransportHandlers {
  opens: number;
  frames: Uint8Array[];
  closes: { reason: string; code: number | undefined }[];
  /** Resolves once `done()` holds, re-checked after every event. */
  until(done: () => boolean): Promise<void>;
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
    until: (done) =>
      new Promise<void>((resolve) => {
        const check = () => {
          if (!done()) return;
          waiters.delete(check);
          resolve();
        };
        waiters.add(check);
        check();
      }),
  };
  return r;
}

/** Connects, says hello and waits for `welcome`, so the relay session is fully open. */
async function openSession(
  transport: Transport,
  space: SpaceId = randomSpace(),
  token: Uint8Array = randomBytes(32),
): Promise<{ conn: TransportConnection; r: Recorder }> {
  const r = recorder();
  const conn = transport.connect(space, token, r);
  await r.until(() => r.opens > 0 || r.closes.length > 0);
  if (r.opens === 0) throw new Error(`connection refused: ${JSON.stringify(r.closes)}`);
  conn.send(hello());
  await r.until(() => r.frames.length > 0 || r.closes.length > 0);
  if (r.frames.length === 0) throw new Error(`closed before welcome: ${JSON.stringify(r.closes)}`);
  expect(decodeMessage(r.frames[0]!).type).toBe("welcome");
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

function randomSpace(): SpaceId {
  return toHex(randomBytes(16)) as SpaceId;
}

function randomBytes(n: number): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(n));
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
