import type { SpaceId } from "../types.ts";

/** What a transport tells the sync engine about one connection. */
export interface TransportHandlers {
  /**
   * The connection is open: frames may be sent. `info.protocol`: the WebSocket subprotocol the relay
   * answered (`shoal.1`, or `shoal-region.<r>` when it confirms a pinned space's region); absent for
   * transports without one.
   */
  onOpen(info?: { readonly protocol?: string }): void;
  /** A whole binary frame arrived. */
  onMessage(frame: Uint8Array): void;
  /**
   * The connection is gone (or never opened). Called exactly once per `connect`. `code` follows
   * WebSocket close codes where the transport has them (4401/4403 mean the credentials were refused).
   */
  onClose(reason: string, code?: number): void;
}

/** One open (or opening) connection for one space. */
export interface TransportConnection {
  /** Sends one binary frame. Frames sent before `onOpen` or after `onClose` are dropped. */
  send(frame: Uint8Array): void;
  /** Bytes accepted by `send` but not yet handed to the network: the engine's backpressure signal. */
  readonly bufferedAmount: number;
  /** Closes the connection; `onClose` follows. */
  close(reason?: string): void;
}

/**
 * The transport port of the sync engine: how frames of the Shoal protocol reach a peer (the relay over a
 * WebSocket, an in-memory pipe in tests, later a WebRTC data channel). Adapters implement this and
 * import the engine's types, never the reverse. Each `connect` is one attempt; the engine reconnects
 * with backoff by calling `connect` again.
 *
 * @example
 * const transport: Transport = webSocketTransport({ url: "ws://127.0.0.1:8787" });
 * const conn = transport.connect(spaceId, tokenBytes, { onOpen, onMessage, onClose });
 */
export interface Transport {
  /** Short name shown in status, e.g. `"relay"`. */
  readonly kind: string;
  /** Where it connects, for status and logs (never carries a token). */
  readonly label: string;
  /**
   * Opens one connection. `claim` is the space's 112-byte claim (PROTOCOL.md 1, "Space claims"), when
   * this device holds one: a relay that does not know the space registers it only with a valid claim.
   * Transports that reach no relay (peers, tabs) ignore it.
   */
  connect(
    space: SpaceId,
    token: Uint8Array,
    handlers: TransportHandlers,
    claim?: Uint8Array,
    /**
     * Device and invitation proofs (`connectionProofs`), already subprotocol items: a relay needs them
     * for a space that has members. Transports that reach no relay ignore them.
     */
    proofs?: readonly string[],
  ): TransportConnection;
  /**
   * Relays only: appeals a refusal of this device as removed (PROTOCOL.md 1, "Appeal") with its own
   * sealed commits the relay lacks (`proofs` as for `connect`). Resolves true when the relay lets the
   * device in now, false when it still refuses it or could not be asked.
   */
  appeal?(
    space: SpaceId,
    token: Uint8Array,
    proofs: readonly string[],
    commits: readonly Uint8Array[],
  ): Promise<boolean>;
}
