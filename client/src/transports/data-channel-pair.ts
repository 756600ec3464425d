import type { DataChannelLike } from "./webrtc-transport.ts";

/**
 * Two connected in-memory "data channels" for Node tests of the WebRTC transport and the peer
 * responder, with what matters of `RTCDataChannel`: `open` after creation, messages delivered
 * asynchronously and in order as copies, `bufferedAmount` counting what was sent and not yet
 * delivered, `bufferedamountlow` when it falls to the threshold, and `close` reaching both ends.
 * `pause()` holds deliveries (a slow network) until `resume()`, to exercise backpressure.
 *
 * @example
 * const [a, b] = dataChannelPair();
 * const conn = openDataChannelLink(a, handlers);
 */
export function dataChannelPair(
  options: { maxMessageBytes?: number } = {},
): [MemoryDataChannel, MemoryDataChannel] {
  const a = new MemoryDataChannel(options.maxMessageBytes ?? 256 * 1024);
  const b = new MemoryDataChannel(options.maxMessageBytes ?? 256 * 1024);
  a.peer = b;
  b.peer = a;
  queueMicrotask(() => {
    a.markOpen();
    b.markOpen();
  });
  return [a, b];
}

/** One end of `dataChannelPair`. */
export class MemoryDataChannel implements DataChannelLike {
  readonly label = "shoal.1";
  readyState = "connecting";
  bufferedAmount = 0;
  bufferedAmountLowThreshold = 0;
  binaryType = "blob";
  onopen: ((event: never) => void) | null = null;
  onmessage: ((event: never) => void) | null = null;
  onclose: ((event: never) => void) | null = null;
  onerror: ((event: never) => void) | null = null;
  onbufferedamountlow: ((event: never) => void) | null = null;
  peer: MemoryDataChannel | null = null;
  /** Messages sent by this end (for counting in tests). */
  sent = 0;
  /** The largest message this end sent, in bytes. */
  largestSent = 0;
  /** The highest `bufferedAmount` this end ever had. */
  peakBuffered = 0;
  readonly #maxMessageBytes: number;
  readonly #outbox: Uint8Array[] = [];
  #paused = false;
  #flushing = false;

  constructor(maxMessageBytes: number) {
    this.#maxMessageBytes = maxMessageBytes;
  }

  markOpen(): void {
    if (this.readyState !== "connecting") return;
    this.readyState = "open";
    (this.onopen as ((e: unknown) => void) | null)?.({});
  }

  send(data: Uint8Array<ArrayBuffer>): void {
    if (this.readyState !== "open") throw new Error("InvalidStateError: the channel is not open");
    // A real stack refuses messages over the negotiated maximum (RTCDataChannel: TypeError).
    if (data.length > this.#maxMessageBytes)
      throw new TypeError(`Message of ${data.length} bytes is over ${this.#maxMessageBytes}.`);
    const copy = data.slice();
    this.sent++;
    this.largestSent = Math.max(this.largestSent, copy.length);
    this.bufferedAmount += copy.length;
    this.peakBuffered = Math.max(this.peakBuffered, this.bufferedAmount);
    this.#outbox.push(copy);
    this.#scheduleFlush();
  }

  close(): void {
    if (this.readyState === "closed" || this.readyState === "closing") return;
    // As with RTCDataChannel, what was already sent is still delivered before the close.
    this.readyState = "closing";
    this.#scheduleFlush();
  }

  #finishClose(): void {
    this.readyState = "closed";
    const peer = this.peer;
    (this.onclose as ((e: unknown) => void) | null)?.({});
    if (peer && peer.readyState !== "closed") {
      peer.readyState = "closed";
      (peer.onclose as ((e: unknown) => void) | null)?.({});
    }
  }

  /** Holds deliveries from this end until `resume`. */
  pause(): void {
    this.#paused = true;
  }

  resume(): void {
    this.#paused = false;
    this.#scheduleFlush();
  }

  #scheduleFlush(): void {
    if (this.#flushing || (this.#paused && this.readyState !== "closing")) return;
    this.#flushing = true;
    // A macrotask, so a burst of sends really piles up in `bufferedAmount` as on a network.
    setTimeout(() => {
      this.#flushing = false;
      const closing = this.readyState === "closing";
      while ((closing || !this.#paused) && this.#outbox.length > 0 && this.readyState !== "closed") {
        const m = this.#outbox.shift()!;
        const before = this.bufferedAmount;
        this.bufferedAmount -= m.length;
        const peer = this.peer;
        if (peer && peer.readyState === "open") {
          const data = peer.binaryType === "arraybuffer" ? m.buffer : m;
          (peer.onmessage as ((e: unknown) => void) | null)?.({ data });
        }
        if (
          before > this.bufferedAmountLowThreshold &&
          this.bufferedAmount <= this.bufferedAmountLowThreshold
        ) {
          (this.onbufferedamountlow as ((e: unknown) => void) | null)?.({});
        }
      }
      if (closing) this.#finishClose();
    }, 0);
  }
}
