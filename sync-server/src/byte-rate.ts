import { TokenBucket } from "./token-bucket.ts";

/**
 * A byte budget that refills at `perSecond` up to `burst` and may go into debt: `take(n)` always
 * succeeds and answers how long the caller should stop reading so the sustained rate holds. Used to
 * throttle by pausing a socket (TCP then pushes back on the sender) rather than by dropping or closing,
 * so a fast honest uploader is slowed, never cut off.
 *
 * @example
 * const rate = new ByteRate(4 << 20, 8 << 20);
 * const waitMs = rate.take(frame.length);
 * if (waitMs > 0) pauseReadingFor(waitMs);
 */
export class ByteRate extends TokenBucket {
  /** Takes `bytes`; returns the milliseconds until the budget is no longer in debt (0: go on). */
  take(bytes: number): number {
    const tokens = this.refill() - bytes;
    this.spend(bytes);
    return tokens >= 0 ? 0 : Math.ceil((-tokens / this.perSecond) * 1000);
  }
}
