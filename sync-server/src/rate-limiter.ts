import { TokenBucket } from "./token-bucket.ts";

/**
 * A token bucket: `perSecond` tokens refill continuously up to `burst`; each frame takes one. Lets a
 * client send a batch quickly after reconnecting while bounding its sustained rate.
 *
 * @example
 * const bucket = new RateLimiter(100, 200);
 * if (!bucket.take()) closeForRateLimit();
 */
export class RateLimiter extends TokenBucket {
  /** Takes one token; false when the bucket is empty. */
  take(): boolean {
    if (this.refill() < 1) return false;
    this.spend(1);
    return true;
  }
}
