import type { Transport, TransportConnection, TransportHandlers } from "./transport.ts";
import type { SpaceId } from "../types.ts";

/**
 * The server side of one in-memory connection, handed to the `accept` callback of `memoryTransport`.
 * It behaves like the relay's end of a WebSocket: frames and closes reach the client asynchronously
 * and in order, and every frame is a private copy.
 *
 * @example
 * memoryTransport((space, token, server) => {
 *   server.onMessage = (frame) => server.send(frame); // an echo server
 * });
 */
export interface MemoryServerEnd {
  /** The space the client asked for (the `<spaceIdHex>` of a real `/sync/<spaceIdHex>` URL). */
  readonly space: string;
  /** True once either side closed. An async `accept` checks it after each `await`. */
  readonly closed: boolean;
  /** Bytes sent by this end and not yet delivered to the client. */
  readonly bufferedAmount: number;
  /** Receives each frame the client sent, in order. */
  onMessage: ((frame: Uint8Array) => void) | undefined;
  /** Called once when the connection ends, whichever side closed it (like a socket's `close` event). */
  onClose: ((code: number, reason: string) => void) | undefined;
  /** Sends a frame to the client. Dropped once closed; held until the connection opens. */
  send(frame: Uint8Array): void;
  /**
   * Closes the connection; the client gets `onClose(reason, code)` after the frames already sent.
   * Called while `accept` runs, it refuses the connection (the client never gets `onOpen`), like an
   * HTTP 401/403 before a WebSocket upgrade.
   */
  close(code?: number, reason?: string): void;
}

/**
 * Decides about one connection. The connection opens when `accept` returns (or its promise resolves)
 * unless it called `server.close(...)` first; a throw or rejection closes it with 1011.
 */
export type MemoryAccept = (
  space: string,
  token: Uint8Array,
  server: MemoryServerEnd,
  /** The space's claim, when the client offered one (a relay needs it to register a new space). */
  claim?: Uint8Array,
  /**
   * The connection's proofs (`shoal-device.`, `shoal-invitation.` subprotocol items), as a real relay
   * reads them from the upgrade: a space with members admits only devices that offer them.
   */
  proofs?: readonly string[],
) => void | Promise<void>;

/** Options of `memoryTransport`. */
export interface MemoryTransportOptions {
  /**
   * Delay of every delivery in each direction. 0 (the default) delivers in a microtask: still never
   * inside `send`, so code that only works with synchronous delivery fails here too.
   */
  latencyMs?: number;
  /** `Transport.label`, default `"memory"`. */
  label?: string;
  /** `Transport.appeal`, when the other end is a relay (`inProcessRelay(...).appeal`). */
  appeal?: Transport["appeal"];
}

// Client-initiated closes carry 1000 (RFC 6455 7.4.1 "normal closure"), as `WebSocket.close()` does.
const NORMAL = 1000;
const INTERNAL_ERROR = 1011;

/**
 * A transport whose "network" is this process: each `connect` calls `accept` with a server end, so a
 * test can play the relay (or plug in the real relay logic, see `inProcessRelay` in
 * `sync-server/src/testing/in-process-relay.ts`) without sockets.
 *
 * @example
 * const transport = memoryTransport(inProcessRelay().accept);
 * transport.connect(space, token, { onOpen, onMessage, onClose });
 */
export function memoryTransport(accept: MemoryAccept, options: MemoryTransportOptions = {}): Transport {
  const latencyMs = options.latencyMs ?? 0;
  return {
    kind: "memory",
    label: options.label ?? "memory",
    connect: (
      space: SpaceId,
      token: Uint8Array,
      handlers: TransportHandlers,
      claim?: Uint8Array,
      proofs?: readonly string[],
    ): TransportConnection =>
      new MemoryLink(space, token.slice(), handlers, accept, latencyMs, claim?.slice(), proofs && [...proofs])
        .client,
    ...(options.appeal && { appeal: options.appeal }),
  };
}

/**
 * One direction of a link: a FIFO whose every push schedules exactly one pop, so deliveries keep
 * their order whatever the scheduler does with equal timers.
 */
class Lane {
  readonly #items: { size: number; deliver: () => void }[] = [];
  readonly #latencyMs: number;
  bytes = 0;

  constructor(latencyMs: number) {
    this.#latencyMs = latencyMs;
  }

  push(size: number, deliver: () => void): void {
    this.#items.push({ size, deliver });
    this.bytes += size;
    const pop = () => {
      const item = this.#items.shift()!;
      this.bytes -= item.size;
      item.deliver();
    };
    if (this.#latencyMs > 0) setTimeout(pop, this.#latencyMs);
    else queueMicrotask(pop);
  }
}

class MemoryLink {
  readonly client: TransportConnection;
  readonly server: MemoryServerEnd;
  readonly #toClient: Lane;
  readonly #toServer: Lane;
  readonly #handlers: TransportHandlers;
  #opened = false;
  /** The client called close, or was told the connection closed: it receives nothing more. */
  #clientDone = false;
  /** The server end called close, or was told the connection closed. */
  #serverDone = false;
  #clientNotified = false;
  #serverNotified = false;
  /** Frames the server sent while `accept` was still deciding. */
  #early: Uint8Array[] = [];

  constructor(
    space: string,
    token: Uint8Array,
    handlers: TransportHandlers,
    accept: MemoryAccept,
    latencyMs: number,
    claim: Uint8Array | undefined,
    proofs: readonly string[] | undefined,
  ) {
    this.#handlers = handlers;
    this.#toClient = new Lane(latencyMs);
    this.#toServer = new Lane(latencyMs);
    const link = this;
    this.client = {
      send: (frame) => link.#clientSend(frame),
      get bufferedAmount() {
        return link.#toServer.bytes;
      },
      close: (reason = "") => link.#clientClose(reason),
    };
    this.server = {
      space,
      get closed() {
        return link.#clientDone || link.#serverDone;
      },
      get bufferedAmount() {
        return link.#toClient.bytes;
      },
      onMessage: undefined,
      onClose: undefined,
      send: (frame) => link.#serverSend(frame),
      close: (code = NORMAL, reason = "") => link.#serverClose(code, reason),
    };
    // The server learns about the connection later, as over a network: `connect` returns first.
    this.#toServer.push(0, () => {
      if (this.server.closed) return this.#notifyServer(NORMAL, "closed before accept");
      Promise.resolve()
        .then(() => accept(space, token, this.server, claim, proofs))
        .then(
          () => this.#open(),
          () => this.#serverClose(INTERNAL_ERROR, "accept failed"),
        );
    });
  }

  #open(): void {
    if (this.server.closed || this.#opened) return;
    this.#opened = true;
    this.#toClient.push(0, () => {
      if (!this.#clientDone) this.#handlers.onOpen();
    });
    for (const frame of this.#early) this.#deliverToClient(frame);
    this.#early = [];
  }

  #clientSend(frame: Uint8Array): void {
    if (!this.#opened || this.#clientDone) return;
    const copy = frame.slice();
    this.#toServer.push(copy.length, () => {
      if (!this.#serverDone) this.server.onMessage?.(copy);
    });
  }

  #serverSend(frame: Uint8Array): void {
    if (this.server.closed) return;
    if (this.#opened) this.#deliverToClient(frame.slice());
    else this.#early.push(frame.slice());
  }

  #deliverToClient(copy: Uint8Array): void {
    this.#toClient.push(copy.length, () => {
      if (!this.#clientDone) this.#handlers.onMessage(copy);
    });
  }

  #clientClose(reason: string): void {
    if (this.#clientDone) return;
    this.#clientDone = true;
    this.#toClient.push(0, () => this.#notifyClient(reason, NORMAL));
    // Behind the client's earlier frames, which the server still receives, as with a close handshake.
    this.#toServer.push(0, () => this.#notifyServer(NORMAL, reason));
  }

  #serverClose(code: number, reason: string): void {
    if (this.#serverDone) return;
    this.#serverDone = true;
    this.#early = [];
    // Behind the server's earlier frames, which the client still receives.
    this.#toClient.push(0, () => {
      this.#clientDone = true;
      this.#notifyClient(reason, code);
    });
    this.#toServer.push(0, () => this.#notifyServer(code, reason));
  }

  #notifyClient(reason: string, code: number): void {
    if (this.#clientNotified) return;
    this.#clientNotified = true;
    this.#handlers.onClose(reason, code);
  }

  #notifyServer(code: number, reason: string): void {
    if (this.#serverNotified) return;
    this.#serverNotified = true;
    this.#serverDone = true;
    this.server.onClose?.(code, reason);
  }
}
