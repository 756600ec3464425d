import { MAX_FRAME_BYTES, MAX_SNAPSHOT_BYTES } from "@shoal/client/protocol";

/**
 * The relay's limits. Every connection and space is bounded so one misbehaving client cannot starve
 * the others.
 *
 * @example
 * createApp({ store, limits: { quotaBytesPerSpace: 64 * 1024 * 1024 } });
 */
export interface RelayLimits {
  /** Largest accepted frame; larger ones get a `too-large` error and a 1009 close. */
  maxFrameBytes: number;
  /** Sustained frames per second per connection (token bucket refill rate). */
  messagesPerSecond: number;
  /** Frames a connection may send in a burst above the sustained rate. */
  messageBurst: number;
  /** Bytes of sealed commits one space may hold; beyond it uploads get a `quota` error. */
  quotaBytesPerSpace: number;
  /**
   * Largest snapshot (all parts together) accepted from a client; a larger upload gets a non-fatal
   * `too-large` error and is dropped. Each connection buffers at most this much of an upload.
   */
  maxSnapshotBytes: number;
  /** Close a connection whose unsent output exceeds this (a reader that does not keep up). */
  maxBufferedBytes: number;
  /** Close a connection after this long without any frame or WebSocket pong. */
  idleTimeoutMs: number;
  /** Close a connection that has not sent `hello` within this time. */
  helloTimeoutMs: number;
  /** Most simultaneous connections to one space; more are refused with 429 before the upgrade. */
  maxConnectionsPerSpace: number;
}

/**
 * Defaults sized for a small relay on one machine.
 *
 * @example
 * const limits = { ...DEFAULT_RELAY_LIMITS, idleTimeoutMs: 30_000 };
 */
export const DEFAULT_RELAY_LIMITS: Readonly<RelayLimits> = Object.freeze({
  maxFrameBytes: MAX_FRAME_BYTES,
  messagesPerSecond: 100,
  messageBurst: 200,
  quotaBytesPerSpace: 256 * 1024 * 1024,
  maxSnapshotBytes: MAX_SNAPSHOT_BYTES,
  maxBufferedBytes: 8 * 1024 * 1024,
  idleTimeoutMs: 60_000,
  helloTimeoutMs: 10_000,
  maxConnectionsPerSpace: 256,
});

/**
 * Defaults overlaid with the given limits, skipping `undefined` ones (a plain spread would let an
 * unset CLI flag erase a default).
 *
 * @example
 * resolveRelayLimits({ idleTimeoutMs: undefined }).idleTimeoutMs; // 60000
 */
export function resolveRelayLimits(limits?: Partial<RelayLimits>): RelayLimits {
  const out: RelayLimits = { ...DEFAULT_RELAY_LIMITS };
  for (const [key, value] of Object.entries(limits ?? {}) as [keyof RelayLimits, number | undefined][]) {
    if (value !== undefined) out[key] = value;
  }
  return out;
}
