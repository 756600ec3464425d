import type { Transport, TransportConnection, TransportHandlers } from "./transport.ts";
import type { SpaceId } from "../types.ts";
import type { MemoryAccept, MemoryServerEnd } from "./memory-transport.ts";

/**
 * The messages both sides post on the channel. Every side of every connection sees every message (a
 * BroadcastChannel has no addressing), so each carries its direction and its connection id.
 */
type Wire =
  | { to: "server"; id: string; t: "connect"; space: string; token: Uint8Array; claim?: Uint8Array }
  | { to: "server" | "client"; id: string; t: "open" | "beat" }
  | { to: "server" | "client"; id: string; t: "frame"; data: Uint8Array }
  | { to: "server" | "client"; id: string; t: "ack"; bytes: number }
  | { to: "server" | "client"; id: string; t: "close"; code: number; reason: string };

/** Options shared by both sides. */
export interface BroadcastChannelOptions {
  /** The BroadcastChannel name; client and server must use the same one. */
  channel: string;
  /**
   * Each side tells the other it is alive this often (default 1000 ms), and gives the other side up
   * as vanished (close code 1006) after three periods of silence: a tab that crashed or was killed
   * sends no close message, and a BroadcastChannel itself never says that nobody listens.
   */
  heartbeatMs?: number;
}

/** Options of `broadcastChannelServer`. */
export interface BroadcastChannelServerOptions extends BroadcastChannelOptions {
  /** Decides about each connection, exactly as for `memoryTransport` (so `inProcessRelay().accept` fits). */
  accept: MemoryAccept;
}

/** The answering side of a channel, as returned by `broadcastChannelServer`. */
export interface BroadcastChannelServer {
  /** Connections currently accepted or being accepted. */
  readonly connections: number;
  /** Closes every connection with 1001 (going away), as a relay shutting down does, and stops listening. */
  close(): void;
}

// WebSocket close codes, which the sync engine already understands.
const NORMAL = 1000;
const GOING_AWAY = 1001;
const ABNORMAL = 1006;
const INTERNAL_ERROR = 1011;
const DEFAULT_HEARTBEAT_MS = 1000;
/** Silent heartbeat periods after which the other side counts as gone. */
const MISSED_BEATS = 3;

/**
 * A transport between two contexts of one origin (tabs, workers) over a named BroadcastChannel: the
 * client side of `broadcastChannelServer`, e.g. a tab syncing through the tab that holds the relay
 * connection or the replica. Frames are copies, arrive in order (a BroadcastChannel keeps the order of
 * one sender), `onClose` comes exactly once and never inside a call, also when the server closes,
 * vanishes (no heartbeat for three periods: 1006) or never answers the connection request (1006, like a
 * refused TCP connection). `bufferedAmount` is the bytes sent and not yet acknowledged by the server.
 *
 * @example
 * const transport = broadcastChannelTransport({ channel: "shoal-sync" });
 * new SpaceSession({ transport, ... }).start();
 */
export function broadcastChannelTransport(options: BroadcastChannelOptions): Transport {
  const heartbeatMs = options.heartbeatMs ?? DEFAULT_HEARTBEAT_MS;
  return {
    kind: "broadcast-channel",
    label: `broadcast:${options.channel}`,
    connect: (
      space: SpaceId,
      token: Uint8Array,
      handlers: TransportHandlers,
      claim?: Uint8Array,
    ): TransportConnection => clientConnection(options.channel, heartbeatMs, space, token, handlers, claim),
  };
}

function clientConnection(
  name: string,
  heartbeatMs: number,
  space: string,
  token: Uint8Array,
  handlers: TransportHandlers,
  claim: Uint8Array | undefined,
): TransportConnection {
  const id = randomId();
  const channel = new BroadcastChannel(name);
  let state: "connecting" | "open" | "closed" = "connecting";
  let unacked = 0;
  let heard = Date.now();
  const post = (m: Wire): void => channel.postMessage(m);

  const finish = (reason: string, code: number): void => {
    if (state === "closed") return;
    state = "closed";
    stop();
    handlers.onClose(reason, code);
  };
  // Releases the channel and the timers; after this the connection neither sends nor hears anything.
  const stop = (): void => {
    clearInterval(timer);
    unacked = 0;
    channel.onmessage = null;
    removePageHide();
    channel.close();
  };
  const timer = setInterval(() => {
    if (Date.now() - heard > heartbeatMs * MISSED_BEATS) {
      // Tell a server that is merely slow to forget us, since we forget it.
      post({ to: "server", id, t: "close", code: ABNORMAL, reason: "server silent" });
      finish(state === "open" ? "the server vanished" : "no server answered", ABNORMAL);
      return;
    }
    post({ to: "server", id, t: "beat" });
  }, heartbeatMs);
  const removePageHide = onPageHide(() => {
    post({ to: "server", id, t: "close", code: GOING_AWAY, reason: "page hidden" });
    finish("page hidden", GOING_AWAY);
  });

  channel.onmessage = (event: MessageEvent<unknown>) => {
    const m = event.data as Wire;
    if (!m || m.to !== "client" || m.id !== id || state === "closed") return;
    heard = Date.now();
    switch (m.t) {
      case "open":
        if (state !== "connecting") return;
        state = "open";
        handlers.onOpen();
        return;
      case "frame": {
        if (state !== "open") return;
        const frame = ownBytes(m.data);
        post({ to: "server", id, t: "ack", bytes: frame.length });
        handlers.onMessage(frame);
        return;
      }
      case "ack":
        unacked = Math.max(0, unacked - m.bytes);
        return;
      case "close":
        finish(m.reason, m.code);
        return;
      default:
        return;
    }
  };
  // The server hears about us after `connect` returned, as over a network.
  post({
    to: "server",
    id,
    t: "connect",
    space,
    token: token.slice(),
    ...(claim && { claim: claim.slice() }),
  });

  return {
    send(frame: Uint8Array): void {
      if (state !== "open") return;
      // A copy of just these bytes: cloning a view would copy its whole underlying buffer.
      const copy = frame.slice();
      unacked += copy.length;
      post({ to: "server", id, t: "frame", data: copy });
    },
    get bufferedAmount(): number {
      return unacked;
    },
    close(reason = ""): void {
      if (state === "closed") return;
      post({ to: "server", id, t: "close", code: NORMAL, reason });
      state = "closed";
      stop();
      queueMicrotask(() => handlers.onClose(reason, NORMAL));
    },
  };
}

/** The server's record of one client connection. */
interface ServerConnection {
  end: MemoryServerEnd;
  heard: number;
  /** Called once the connection is over on this side, whoever ended it. */
  finish(code: number, reason: string, tellClient: boolean): void;
  receive(m: Wire): void;
}

/**
 * Answers `broadcastChannelTransport` clients on a channel: each client connection is handed to
 * `accept` as a `MemoryServerEnd`, so the in-process relay (or a `PeerResponder` behind a small
 * adapter) serves it exactly as it serves `memoryTransport`. Run one server per channel name: two
 * would both accept every client.
 *
 * @example
 * const server = broadcastChannelServer({ channel: "shoal-sync", accept: inProcessRelay().accept });
 * // ... later
 * server.close();
 */
export function broadcastChannelServer(options: BroadcastChannelServerOptions): BroadcastChannelServer {
  const heartbeatMs = options.heartbeatMs ?? DEFAULT_HEARTBEAT_MS;
  const channel = new BroadcastChannel(options.channel);
  const connections = new Map<string, ServerConnection>();
  let stopped = false;
  const post = (m: Wire): void => {
    if (!stopped) channel.postMessage(m);
  };

  const start = (id: string, space: string, token: Uint8Array, claim: Uint8Array | undefined): void => {
    let opened = false;
    let done = false;
    let unacked = 0;
    let early: Uint8Array[] = [];
    const sendNow = (frame: Uint8Array): void => {
      unacked += frame.length;
      post({ to: "client", id, t: "frame", data: frame });
    };
    const end: MemoryServerEnd = {
      space,
      get closed() {
        return done;
      },
      get bufferedAmount() {
        return unacked;
      },
      onMessage: undefined,
      onClose: undefined,
      send(frame) {
        if (done) return;
        if (opened) sendNow(frame.slice());
        else early.push(frame.slice());
      },
      close: (code = NORMAL, reason = "") => conn.finish(code, reason, true),
    };
    const conn: ServerConnection = {
      end,
      heard: Date.now(),
      finish(code, reason, tellClient) {
        if (done) return;
        done = true;
        early = [];
        unacked = 0;
        connections.delete(id);
        if (tellClient) post({ to: "client", id, t: "close", code, reason });
        // Never inside the caller's call (a relay session closing itself must not re-enter).
        queueMicrotask(() => end.onClose?.(code, reason));
      },
      receive(m) {
        conn.heard = Date.now();
        if (m.t === "frame") {
          if (!opened || done) return;
          const frame = ownBytes(m.data);
          post({ to: "client", id, t: "ack", bytes: frame.length });
          end.onMessage?.(frame);
        } else if (m.t === "ack") {
          unacked = Math.max(0, unacked - m.bytes);
        } else if (m.t === "close") {
          conn.finish(m.code, m.reason, false);
        }
      },
    };
    connections.set(id, conn);
    Promise.resolve()
      .then(() => options.accept(space, token, end, claim))
      .then(
        () => {
          if (done) return;
          opened = true;
          post({ to: "client", id, t: "open" });
          for (const frame of early) sendNow(frame);
          early = [];
        },
        () => conn.finish(INTERNAL_ERROR, "accept failed", true),
      );
  };

  channel.onmessage = (event: MessageEvent<unknown>) => {
    const m = event.data as Wire;
    if (!m || m.to !== "server" || stopped) return;
    if (m.t === "connect") {
      if (!connections.has(m.id))
        start(
          m.id,
          m.space,
          ownBytes(m.token),
          m.claim instanceof Uint8Array ? ownBytes(m.claim) : undefined,
        );
      return;
    }
    connections.get(m.id)?.receive(m);
  };

  const timer = setInterval(() => {
    const now = Date.now();
    for (const [id, conn] of connections) {
      if (now - conn.heard > heartbeatMs * MISSED_BEATS) conn.finish(ABNORMAL, "the client vanished", true);
      else post({ to: "client", id, t: "beat" });
    }
  }, heartbeatMs);

  const close = (): void => {
    if (stopped) return;
    for (const conn of [...connections.values()]) conn.finish(GOING_AWAY, "server closed", true);
    stopped = true;
    clearInterval(timer);
    removePageHide();
    channel.onmessage = null;
    channel.close();
  };
  // A tab that holds the server tells its clients when it goes, instead of leaving them to time out.
  const removePageHide = onPageHide(close);

  return {
    get connections() {
      return connections.size;
    },
    close,
  };
}

/**
 * Calls `fn` on the page's `pagehide` (the last event a closing or navigating tab reliably gets);
 * returns the remover. A no-op outside windows (workers, Node).
 */
function onPageHide(fn: () => void): () => void {
  const target = globalThis as {
    addEventListener?: (type: string, listener: () => void) => void;
    removeEventListener?: (type: string, listener: () => void) => void;
  };
  if (!("onpagehide" in globalThis) || !target.addEventListener) return () => {};
  target.addEventListener("pagehide", fn);
  return () => target.removeEventListener?.("pagehide", fn);
}

/**
 * The received bytes as a `Uint8Array` of this realm: a structured clone may produce one of another
 * realm (Node's BroadcastChannel does), which `instanceof` checks and deep equality would refuse.
 */
function ownBytes(data: Uint8Array): Uint8Array {
  if (data instanceof Uint8Array) return data;
  const view = data as ArrayBufferView;
  return new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
}

function randomId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
