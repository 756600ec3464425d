import { randomBytes } from "node:crypto";
import { Cluster } from "ioredis";
import type { HubLink, HubSink } from "./space-hub.ts";
import { createRedisClient, type RedisClient } from "./store/redis-client.ts";
import { parseRedisTarget } from "./store/redis-target.ts";

/** Options of `RedisFanOut.open`. */
export interface RedisFanOutOptions {
  /** The same Redis the store uses: `redis://host:port/db`, or `redis+cluster://host:port,host:port`. */
  url: string;
  /** Prepended to channel names, like the store's key prefix. Default `shoal:`. */
  keyPrefix?: string;
  /** Commits of one publish reached this instance `lagMs` after another one published them. */
  onDelivered?: (commits: number, lagMs: number) => void;
  /** Commits of one publish left this instance. */
  onPublished?: (commits: number) => void;
  /** A Redis operation failed (`publish`, `subscribe`, `connection`). */
  onError?: (operation: "publish" | "subscribe" | "connection") => void;
}

// Message layout on a space's channel (all integers big-endian):
// u8 version 1 | 16 bytes publishing instance | f64 publish time, ms since the epoch | u16 n | n x (u32 length, commit)
const MESSAGE_VERSION = 1;
const HEADER_BYTES = 1 + 16 + 8 + 2;
// A signal frame on the same channel (PROTOCOL.md, "Signalling"):
// u8 kind 2 | 16 bytes publishing instance | f64 publish time | 16 bytes `to` (zeros: everyone) | frame
const SIGNAL_KIND = 2;
const SIGNAL_HEADER_BYTES = 1 + 16 + 8 + 16;
// An unwatched space stays subscribed this long, so a device that reconnects at once (or a new
// upgrade racing the last leave) never falls into a gap between unsubscribe and subscribe.
const UNWATCH_DELAY_MS = 5_000;
// In a cluster, how long the sharded subscribers must stay up after a drop before the hub resyncs.
const SUBSCRIBERS_SETTLE_MS = 500;

/**
 * Fan-out between relay instances over Redis sharded pub/sub (`SPUBLISH`/`SSUBSCRIBE`, Redis 7): one
 * channel per space, `shoal:{<space>}:live`, hash-tagged like the store's keys so that in Redis Cluster
 * a space's messages stay on the shard that holds its commits (ioredis's `Cluster` with
 * `shardedSubscribers`: one subscriber connection per master, each for the channels of its slots). A message carries the sealed commits
 * themselves (the instance that stored them already has the bytes; receivers push them without a
 * store read). Each instance subscribes only to spaces it has connections for.
 *
 * Pub/sub is at-most-once: when the subscriber connection drops, messages may be lost, so on
 * reconnect the hub closes its connections (1001) and devices pull what they lack. Publishing
 * happens after the store's durable write, so a delivered commit is always readable from the store.
 *
 * @example
 * const fanOut = await RedisFanOut.open({ url, onDelivered: (n, ms) => metrics.fanOutDelivered(n, ms) });
 * const hub = new SpaceHub({ link: fanOut });
 */
export class RedisFanOut implements HubLink {
  readonly #pub: RedisClient;
  readonly #sub: RedisClient;
  readonly #prefix: string;
  readonly #options: RedisFanOutOptions;
  readonly #instance = new Uint8Array(randomBytes(16));
  readonly #watched = new Map<string, Promise<void>>();
  readonly #leaving = new Map<string, ReturnType<typeof setTimeout>>();
  #sink: HubSink | undefined;
  #lost = false;
  #settling: ReturnType<typeof setTimeout> | undefined;
  #closed = false;

  private constructor(pub: RedisClient, sub: RedisClient, options: RedisFanOutOptions) {
    this.#pub = pub;
    this.#sub = sub;
    this.#options = options;
    this.#prefix = options.keyPrefix ?? "shoal:";
  }

  /**
   * Opens the publishing and the subscribing connections (a subscribed Redis connection can do
   * nothing else) and resolves once both are ready.
   *
   * @example
   * const fanOut = await RedisFanOut.open({ url: "redis://127.0.0.1:6379/0" });
   */
  static async open(options: RedisFanOutOptions): Promise<RedisFanOut> {
    const target = parseRedisTarget(options.url);
    const pub = createRedisClient(target, "command");
    const sub = createRedisClient(target, "subscriber");
    const fanOut = new RedisFanOut(pub, sub, options);
    for (const client of [pub, sub]) client.on("error", () => options.onError?.("connection"));
    sub.on("smessageBuffer", (channel: Buffer, message: Buffer) => fanOut.#receive(channel, message));
    const lost = () => {
      if (fanOut.#closed) return;
      fanOut.#lost = true;
      clearTimeout(fanOut.#settling);
    };
    // ioredis re-sends SSUBSCRIBE for every channel on reconnect; what was published meanwhile is gone.
    const regained = () => {
      if (!fanOut.#lost) return;
      fanOut.#lost = false;
      fanOut.#sink?.resync("fan-out reconnected");
    };
    sub.on("close", lost);
    if (sub instanceof Cluster) {
      // In a cluster each master has its own sharded subscriber connection. One that drops (its master
      // died, or a failover moved its slots) is replaced and its channels subscribed again once the
      // slot map is re-read; ioredis says so with "subscribersReady", but also after each failed
      // attempt to reach a dead master, every few milliseconds until a replica takes over, and before
      // its re-sent SSUBSCRIBEs are answered. So the resync waits until the subscribers have stayed up
      // for a moment: one round of closed sockets per failover, not hundreds, and after the channels
      // are heard again. Should a later drop come, it resyncs again.
      sub.on("-node", lost);
      sub.on("-subscriber", lost);
      sub.on("subscribersReady", () => {
        if (!fanOut.#lost || fanOut.#closed) return;
        clearTimeout(fanOut.#settling);
        fanOut.#settling = setTimeout(regained, SUBSCRIBERS_SETTLE_MS);
        fanOut.#settling.unref();
      });
    } else {
      sub.on("ready", regained);
    }
    try {
      await Promise.all([pub.connect(), sub.connect()]);
    } catch (e) {
      pub.disconnect();
      sub.disconnect();
      throw e;
    }
    return fanOut;
  }

  /** Both connections are up: without the subscriber, this instance would miss other instances' commits. */
  get healthy(): boolean {
    return this.#pub.status === "ready" && this.#sub.status === "ready" && !this.#lost;
  }

  attach(sink: HubSink): void {
    this.#sink = sink;
  }

  watch(space: string): Promise<void> {
    const pending = this.#leaving.get(space);
    if (pending) {
      clearTimeout(pending);
      this.#leaving.delete(space);
    }
    let subscribed = this.#watched.get(space);
    if (!subscribed) {
      subscribed = this.#sub.ssubscribe(this.#channel(space)).then(
        () => undefined,
        (e: unknown) => {
          this.#watched.delete(space);
          this.#options.onError?.("subscribe");
          throw e;
        },
      );
      this.#watched.set(space, subscribed);
    }
    return subscribed;
  }

  unwatch(space: string): void {
    if (!this.#watched.has(space) || this.#leaving.has(space)) return;
    const timer = setTimeout(() => {
      this.#leaving.delete(space);
      this.#watched.delete(space);
      this.#sub.sunsubscribe(this.#channel(space)).catch(() => this.#options.onError?.("subscribe"));
    }, UNWATCH_DELAY_MS);
    timer.unref();
    this.#leaving.set(space, timer);
  }

  publish(space: string, commits: Uint8Array[]): void {
    if (commits.length === 0 || this.#closed) return;
    const message = encodeFanOutMessage(this.#instance, performance.timeOrigin + performance.now(), commits);
    this.#pub.spublish(this.#channel(space), message).then(
      () => this.#options.onPublished?.(commits.length),
      // Nothing to retry: the commits are stored, and devices elsewhere get them by their next pull.
      () => this.#options.onError?.("publish"),
    );
  }

  publishSignal(space: string, to: string | null, frame: Uint8Array): void {
    if (this.#closed) return;
    const out = Buffer.allocUnsafe(SIGNAL_HEADER_BYTES + frame.length);
    out.writeUInt8(SIGNAL_KIND, 0);
    out.set(this.#instance, 1);
    out.writeDoubleBE(performance.timeOrigin + performance.now(), 17);
    out.fill(0, 25, 41);
    if (to) out.set(Buffer.from(to, "hex"), 25);
    out.set(frame, SIGNAL_HEADER_BYTES);
    // Best effort, as signalling is: a lost signal is an offer that times out and is made again.
    this.#pub.spublish(this.#channel(space), out).catch(() => this.#options.onError?.("publish"));
  }

  /** Closes both connections. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#settling);
    for (const timer of this.#leaving.values()) clearTimeout(timer);
    this.#leaving.clear();
    await Promise.all(
      [this.#pub, this.#sub].map((c) =>
        c.status === "ready"
          ? c.quit().then(
              () => undefined,
              () => c.disconnect(),
            )
          : c.disconnect(),
      ),
    );
  }

  #receive(channel: Buffer, message: Buffer): void {
    const space = channel.toString().match(/\{([0-9a-f]{32})\}:live$/)?.[1];
    if (!space || !this.#sink) return;
    if (message.length >= SIGNAL_HEADER_BYTES && message.readUInt8(0) === SIGNAL_KIND) {
      if (Buffer.compare(message.subarray(1, 17), this.#instance) === 0) return;
      const toBytes = message.subarray(25, 41);
      const to = toBytes.every((b) => b === 0) ? null : toBytes.toString("hex");
      this.#sink.deliverSignal?.(space, to, new Uint8Array(message.subarray(SIGNAL_HEADER_BYTES)));
      return;
    }
    let decoded: { instance: Uint8Array; sentAt: number; commits: Uint8Array[] };
    try {
      decoded = decodeFanOutMessage(message);
    } catch {
      return; // only relays publish here; a malformed message is dropped, never pushed to devices
    }
    // The publishing instance already pushed to its own connections (SpaceHub.publish).
    if (Buffer.compare(decoded.instance, this.#instance) === 0) return;
    this.#options.onDelivered?.(
      decoded.commits.length,
      performance.timeOrigin + performance.now() - decoded.sentAt,
    );
    this.#sink.deliver(space, decoded.commits);
  }

  #channel(space: string): string {
    return `${this.#prefix}{${space}}:live`;
  }
}

/**
 * Encodes one fan-out message (layout above).
 *
 * @example
 * const bytes = encodeFanOutMessage(instanceId, Date.now(), [commit]);
 */
export function encodeFanOutMessage(instance: Uint8Array, sentAt: number, commits: Uint8Array[]): Buffer {
  const size = HEADER_BYTES + commits.reduce((n, c) => n + 4 + c.length, 0);
  const out = Buffer.allocUnsafe(size);
  out.writeUInt8(MESSAGE_VERSION, 0);
  out.set(instance, 1);
  out.writeDoubleBE(sentAt, 17);
  out.writeUInt16BE(commits.length, 25);
  let at = HEADER_BYTES;
  for (const c of commits) {
    out.writeUInt32BE(c.length, at);
    out.set(c, at + 4);
    at += 4 + c.length;
  }
  return out;
}

/**
 * Decodes a fan-out message; throws on anything malformed.
 *
 * @example
 * const { commits } = decodeFanOutMessage(bytes);
 */
export function decodeFanOutMessage(bytes: Buffer): {
  instance: Uint8Array;
  sentAt: number;
  commits: Uint8Array[];
} {
  if (bytes.length < HEADER_BYTES || bytes.readUInt8(0) !== MESSAGE_VERSION)
    throw new Error("bad fan-out message");
  const count = bytes.readUInt16BE(25);
  const commits: Uint8Array[] = [];
  let at = HEADER_BYTES;
  for (let i = 0; i < count; i++) {
    if (at + 4 > bytes.length) throw new Error("truncated fan-out message");
    const length = bytes.readUInt32BE(at);
    if (at + 4 + length > bytes.length) throw new Error("truncated fan-out message");
    // Copy out of the message buffer: each session may hold on to the bytes while its socket drains.
    commits.push(new Uint8Array(bytes.subarray(at + 4, at + 4 + length)));
    at += 4 + length;
  }
  if (at !== bytes.length) throw new Error("trailing bytes in fan-out message");
  return { instance: new Uint8Array(bytes.subarray(1, 17)), sentAt: bytes.readDoubleBE(17), commits };
}
