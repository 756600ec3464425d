import { createHash, randomBytes } from "node:crypto";
import WebSocket from "ws";
import {
  COMMIT_FORMAT_VERSION,
  SEALED_COMMIT_OVERHEAD,
  decodeMessage,
  encodeMessage,
  fromHex,
  offeredSubprotocols,
  vectorPages,
  type VectorEntry,
  type Message,
} from "@shoal/client/protocol";
import { signedCommit, type DeviceKey } from "./device-key.ts";

/** Where a simulated device records what it saw; shared by every device of one scenario. */
export interface LoadRecorder {
  /** Milliseconds from a writer's send to its ack. */
  ackMs: number[];
  /** Milliseconds from a writer's send to a live push at another device, split by path. */
  deliverMs: { sameInstance: number[]; crossInstance: number[] };
  acked: number;
  refused: number;
  closedEarly: number;
}

/** One device's identity and where it connects. */
export interface DevicePlan {
  wsUrl: string;
  /** Index of the relay instance it connects to (0 or 1): tells same- and cross-instance pushes apart. */
  instance: number;
  space: string;
  token: Uint8Array;
  /**
   * The space's claim (PROTOCOL.md 1, "Space claims"), offered on every connection as a real client
   * does: the relay registers an unknown space only with its creator's claim.
   */
  claim?: Uint8Array;
  /** The device's signing key; its id is derived from it. */
  key: DeviceKey;
}

/**
 * How a writer sends: `one` commit per frame with one frame in flight (the earlier runs' mode), or
 * `pending`: commits fall due at the rate whatever the relay does, and each frame carries every commit
 * due since the previous frame (at most 256), with up to 4 frames in flight.
 */
export type WriteMode = "one" | "pending";

// A frame of the pending mode carries at most this many commits: 256 x 4.2 KiB stays under the 1 MiB
// frame limit.
const MAX_COMMITS_PER_FRAME = 256;
// Frames a pending-mode writer keeps in flight: while the relay verifies and stores one, the next is
// signed and on its way, so neither side waits for the other (the relay still takes them in order).
const PENDING_WINDOW = 4;

// A sealed body is a 12-byte nonce, the padded plaintext (PROTOCOL.md 3.2: 256 bytes, then powers of
// two), and a 16-byte tag. Small edits dominate real traffic, so most commits take the first buckets.
const PADDED_SIZES = [256, 256, 256, 512, 512, 1024, 2048, 4096] as const;
const NONCE_AND_TAG = 12 + 16;
// Random bytes reused as ciphertext: the relay never decrypts, so fresh randomness per commit buys nothing.
const NOISE = new Uint8Array(randomBytes(8192));

/**
 * A device speaking the relay protocol over a raw `ws` socket with opaque commits it signs: `hello`,
 * one catch-up `pull`, then (if a writer) commits at `ratePerSecond` at most, one frame in flight,
 * waiting for each ack (`WriteMode` says how many commits a frame carries). The first 8 bytes of each
 * body carry the time the commit fell due and byte 8 the writer's instance, so receivers can time the
 * fan-out; the relay cannot tell these bytes from ciphertext.
 *
 * @example
 * const d = await SimulatedDevice.connect(plan, recorder);
 * d.startWriting(10, "one");
 * // later
 * await d.stopWriting(); d.close();
 */
export class SimulatedDevice {
  readonly #plan: DevicePlan;
  readonly #recorder: LoadRecorder;
  readonly #ws: WebSocket;
  readonly #spaceBytes: Uint8Array;
  #seq = 0;
  #prevHash = new Uint8Array(32);
  #writing = false;
  /** The frame awaiting its ack: each commit's due time, and who waits. */
  /** Frames awaiting their acks, oldest first (the relay acks a connection's frames in order). */
  #inFlight: { sentAt: number[]; resolve: () => void }[] = [];
  #loop: Promise<void> = Promise.resolve();
  #closing = false;

  private constructor(plan: DevicePlan, recorder: LoadRecorder, ws: WebSocket) {
    this.#plan = plan;
    this.#recorder = recorder;
    this.#ws = ws;
    this.#spaceBytes = fromHex(plan.space, 16);
  }

  /** Opens the socket, completes hello/welcome and a first pull; rejects on any failure or after 20 s. */
  static async connect(plan: DevicePlan, recorder: LoadRecorder): Promise<SimulatedDevice> {
    const ws = new WebSocket(
      `${plan.wsUrl}/sync/${plan.space}`,
      offeredSubprotocols(plan.token, plan.claim),
      {
        perMessageDeflate: false,
      },
    );
    const device = new SimulatedDevice(plan, recorder, ws);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("connect timed out")), 20_000);
      let welcomed = false;
      const relayVector: VectorEntry[] = [];
      ws.on("message", (data: Buffer) => {
        const m = decodeMessage(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
        if (m.type === "welcome" && !welcomed) {
          // The relay's vector may come in pages (protocol 2): pull, in pages too, after the last one.
          relayVector.push(...m.vector);
          if (m.more) return;
          welcomed = true;
          const pages = vectorPages(relayVector);
          pages.forEach((page, i) =>
            ws.send(
              encodeMessage({
                type: "pull",
                space: device.#spaceBytes,
                vector: page,
                maxBytes: 1 << 20,
                more: i < pages.length - 1,
              }),
            ),
          );
        } else if (m.type === "commits" && m.reply) {
          clearTimeout(timer);
          resolve();
        }
        device.#onMessage(m);
      });
      ws.once("open", () =>
        ws.send(
          encodeMessage({
            type: "hello",
            minVersion: 2,
            maxVersion: 2,
            device: fromHex(plan.key.device, 16),
          }),
        ),
      );
      ws.once("error", (e) => {
        clearTimeout(timer);
        reject(e);
      });
      ws.once("close", () => {
        clearTimeout(timer);
        reject(new Error("closed during connect"));
        if (!device.#closing) recorder.closedEarly += 1;
      });
    });
    return device;
  }

  /** Starts the write loop at `ratePerSecond` (see `WriteMode`). */
  startWriting(ratePerSecond: number, mode: WriteMode = "one"): void {
    this.#writing = true;
    this.#loop = mode === "one" ? this.#writeOneAtATime(ratePerSecond) : this.#writePending(ratePerSecond);
  }

  async #writeOneAtATime(ratePerSecond: number): Promise<void> {
    const interval = 1000 / ratePerSecond;
    while (this.#writing && this.#ws.readyState === WebSocket.OPEN) {
      const started = performance.now();
      await this.#send([this.#nextCommit(performance.timeOrigin + started)]);
      const wait = interval - (performance.now() - started);
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
  }

  async #writePending(ratePerSecond: number): Promise<void> {
    const start = performance.timeOrigin + performance.now();
    let made = 0;
    const window: Promise<void>[] = [];
    while (this.#writing && this.#ws.readyState === WebSocket.OPEN) {
      const due = Math.min(
        MAX_COMMITS_PER_FRAME,
        Math.floor(((performance.timeOrigin + performance.now() - start) * ratePerSecond) / 1000) - made,
      );
      if (due <= 0) {
        await new Promise((r) => setTimeout(r, 1));
        continue;
      }
      // Each commit carries the time it fell due, so the wait for earlier acks counts in its latency.
      const commits = Array.from({ length: due }, (_, i) =>
        this.#nextCommit(start + ((made + i) * 1000) / ratePerSecond),
      );
      made += due;
      window.push(this.#send(commits));
      if (window.length >= PENDING_WINDOW) await window.shift();
    }
    await Promise.all(window);
  }

  /** Stops after the commit in flight is acknowledged (bounded by `timeoutMs`). */
  async stopWriting(timeoutMs = 10_000): Promise<void> {
    this.#writing = false;
    await Promise.race([this.#loop, new Promise((r) => setTimeout(r, timeoutMs))]);
  }

  close(): void {
    this.#closing = true;
    this.#writing = false;
    for (const f of this.#inFlight.splice(0)) f.resolve();
    this.#ws.terminate();
  }

  /** The device's next signed commit; its body starts with `dueAt` (ms, timeOrigin-based) and the instance. */
  #nextCommit(dueAt: number): Uint8Array {
    const padded = PADDED_SIZES[(this.#seq * 7) % PADDED_SIZES.length]!;
    const body = new Uint8Array(padded + NONCE_AND_TAG);
    body.set(NOISE.subarray(0, Math.min(body.length, NOISE.length)));
    new DataView(body.buffer).setFloat64(0, dueAt);
    body[8] = this.#plan.instance;
    this.#seq += 1;
    const { key } = this.#plan;
    const commit = signedCommit(
      key,
      {
        version: COMMIT_FORMAT_VERSION,
        space: this.#spaceBytes,
        device: fromHex(key.device, 16),
        seq: this.#seq,
        epoch: 0,
        prevHash: this.#prevHash,
        author: key.author,
      },
      body,
    );
    this.#prevHash = new Uint8Array(createHash("sha256").update(commit).digest());
    return commit;
  }

  /** Sends one commits frame and resolves at its ack (or error). */
  async #send(commits: Uint8Array[]): Promise<void> {
    const sentAt = commits.map((c) =>
      new DataView(c.buffer, c.byteOffset + SEALED_COMMIT_OVERHEAD, 8).getFloat64(0),
    );
    await new Promise<void>((resolve) => {
      this.#inFlight.push({ sentAt, resolve });
      this.#ws.send(encodeMessage({ type: "commits", space: this.#spaceBytes, commits, more: false }));
    });
  }

  #onMessage(m: Message): void {
    const now = performance.timeOrigin + performance.now();
    const oldest = this.#inFlight[0];
    if (m.type === "ack" && oldest) {
      this.#inFlight.shift();
      this.#recorder.acked += oldest.sentAt.length;
      for (const at of oldest.sentAt) this.#recorder.ackMs.push(now - at);
      oldest.resolve();
    } else if (m.type === "error" && oldest) {
      this.#recorder.refused += 1;
      this.#writing = false;
      for (const f of this.#inFlight.splice(0)) f.resolve();
    } else if (m.type === "commits" && !m.reply) {
      for (const c of m.commits) {
        // The body starts after the header and its length (PROTOCOL.md 3): send time, then the writer's
        // instance.
        const view = new DataView(c.buffer, c.byteOffset + SEALED_COMMIT_OVERHEAD, 9);
        const path = view.getUint8(8) === this.#plan.instance ? "sameInstance" : "crossInstance";
        this.#recorder.deliverMs[path].push(now - view.getFloat64(0));
      }
    }
  }
}
