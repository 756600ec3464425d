import { MAX_FRAME_BYTES, MAX_SNAPSHOT_BYTES } from "@shoal/client/protocol";

/**
 * The relay's limits. Every connection, address, space and the store as a whole is bounded, so one
 * misbehaving client (or a stranger without any key) cannot starve the others. Every value is a
 * positive integer: zero is refused (`resolveRelayLimits` throws), never read as "no limit".
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
  /**
   * Sustained bytes per second one connection may send. Over it the relay stops reading the socket
   * until the bucket refilled (TCP pushes back on the sender); nothing is dropped or closed.
   */
  connectionBytesPerSecond: number;
  /** Sustained bytes per second all connections of one space together may send (same throttling). */
  spaceBytesPerSecond: number;
  /**
   * Sustained commits per second one connection may upload (burst: twice as many). The relay verifies
   * each commit's Ed25519 signature (about 0.1 ms of its one thread), so small commits at the byte
   * limit alone could keep it busy; over this the relay stops reading the socket until the budget
   * refilled, as for bytes: the uploader is slowed, never cut off.
   */
  connectionCommitsPerSecond: number;
  /** Bytes of sealed commits one space may hold; beyond it uploads get a `quota` error. */
  quotaBytesPerSpace: number;
  /**
   * Largest snapshot (all parts together) accepted from a client; a larger upload gets a non-fatal
   * `too-large` error and is dropped.
   */
  maxSnapshotBytes: number;
  /**
   * Bytes of unfinished snapshot uploads the relay holds in memory for all connections together; an
   * upload that would go over it is refused like an oversized one (`too-large`, not fatal), so a few
   * stalled uploads cannot exhaust the relay's memory. Each connection holds at most one upload, of at
   * most `maxSnapshotBytes`.
   */
  maxUploadBufferBytes: number;
  /** Close a connection whose unsent output exceeds this (a reader that does not keep up). */
  maxBufferedBytes: number;
  /** Close a connection after this long without any frame or WebSocket pong. */
  idleTimeoutMs: number;
  /** Close a connection that has not sent `hello` within this time. */
  helloTimeoutMs: number;
  /** Most simultaneous connections to one space; more are refused with 429 before the upgrade. */
  maxConnectionsPerSpace: number;
  /**
   * Most open TCP connections to the relay (HTTP and WebSocket, including ones still sending their
   * headers); a connection over it gets a bare 503 and is closed before any request is read.
   */
  maxConnections: number;
  /** Most open TCP connections from one client address; over it a bare 429 and a close. */
  maxConnectionsPerAddress: number;
  /** Time a client has to send a request's headers (Node `server.headersTimeout`); then 408 and close. */
  headersTimeoutMs: number;
  /** Time a client has to send a whole request, body included (Node `server.requestTimeout`). */
  requestTimeoutMs: number;
  /** Most spaces the store may hold; a connection that would register one more is refused with 503. */
  maxSpaces: number;
  /** New spaces one client address may register per hour (burst the same); over it 429. */
  newSpacesPerHourPerAddress: number;
  /**
   * Bytes of commits and snapshots the whole store may hold; an upload that would go over it is
   * refused (`quota`, "the relay's storage is full"), whatever its space's own quota.
   */
  maxStoreBytes: number;
}

/**
 * Defaults sized for a small relay on one machine: a few thousand devices, a few GiB of disk, under
 * 1 GiB of memory even when every connection slot is taken by a hostile client.
 *
 * @example
 * const limits = { ...DEFAULT_RELAY_LIMITS, idleTimeoutMs: 30_000 };
 */
export const DEFAULT_RELAY_LIMITS: Readonly<RelayLimits> = Object.freeze({
  maxFrameBytes: MAX_FRAME_BYTES,
  messagesPerSecond: 100,
  messageBurst: 200,
  connectionBytesPerSecond: 8 * 1024 * 1024,
  spaceBytesPerSecond: 16 * 1024 * 1024,
  connectionCommitsPerSecond: 4000,
  quotaBytesPerSpace: 256 * 1024 * 1024,
  maxSnapshotBytes: MAX_SNAPSHOT_BYTES,
  maxUploadBufferBytes: 256 * 1024 * 1024,
  maxBufferedBytes: 8 * 1024 * 1024,
  idleTimeoutMs: 60_000,
  helloTimeoutMs: 10_000,
  maxConnectionsPerSpace: 256,
  maxConnections: 4096,
  maxConnectionsPerAddress: 256,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  maxSpaces: 100_000,
  newSpacesPerHourPerAddress: 60,
  maxStoreBytes: 16 * 1024 * 1024 * 1024,
});

// A smaller frame limit could not carry a welcome or a snapshot part with a long vector.
const MIN_FRAME_BYTES = 64 * 1024;

/**
 * Defaults overlaid with the given limits, skipping `undefined` ones (a plain spread would let an
 * unset CLI flag erase a default). Throws a `RangeError` naming the limit when a value is not a
 * positive safe integer: 0 would otherwise stop the relay in odd ways (`maxFrameBytes: 0` refused
 * every frame, and crashed it), and there is no "unlimited".
 *
 * @example
 * resolveRelayLimits({ idleTimeoutMs: undefined }).idleTimeoutMs; // 60000
 */
export function resolveRelayLimits(limits?: Partial<RelayLimits>): RelayLimits {
  const out: RelayLimits = { ...DEFAULT_RELAY_LIMITS };
  for (const [key, value] of Object.entries(limits ?? {}) as [keyof RelayLimits, number | undefined][]) {
    if (value === undefined) continue;
    if (!(key in DEFAULT_RELAY_LIMITS)) throw new RangeError(`Unknown relay limit ${key}.`);
    if (!Number.isSafeInteger(value) || value <= 0) {
      throw new RangeError(`The relay limit ${key} must be a positive integer, not ${value}.`);
    }
    out[key] = value;
  }
  if (out.maxFrameBytes < MIN_FRAME_BYTES || out.maxFrameBytes > MAX_FRAME_BYTES) {
    throw new RangeError(`The relay limit maxFrameBytes must be ${MIN_FRAME_BYTES} to ${MAX_FRAME_BYTES}.`);
  }
  if (out.headersTimeoutMs > out.requestTimeoutMs) {
    throw new RangeError("The relay limit headersTimeoutMs must not exceed requestTimeoutMs.");
  }
  return out;
}
