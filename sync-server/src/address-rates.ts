import { RateLimiter } from "./rate-limiter.ts";

// Addresses remembered at most; past it, addresses whose bucket is full again are forgotten (they
// would get a full bucket anyway), so a scan of many addresses cannot grow this map without bound.
const MAX_TRACKED_ADDRESSES = 10_000;

/**
 * Per client address, a token bucket of events per hour (new spaces registered). Forgets addresses
 * whose bucket has refilled once too many are tracked.
 *
 * @example
 * const newSpaces = new AddressRates(60);
 * if (!newSpaces.take(address)) return refuse(429);
 */
export class AddressRates {
  readonly #perHour: number;
  readonly #now: () => number;
  readonly #buckets = new Map<string, { bucket: RateLimiter; at: number }>();

  constructor(perHour: number, now: () => number = () => performance.now()) {
    this.#perHour = perHour;
    this.#now = now;
  }

  /** Takes one event for `address`; false when its hourly budget is spent. */
  take(address: string): boolean {
    const now = this.#now();
    let entry = this.#buckets.get(address);
    if (!entry) {
      if (this.#buckets.size >= MAX_TRACKED_ADDRESSES) this.#forgetRefilled(now);
      entry = { bucket: new RateLimiter(this.#perHour / 3600, this.#perHour, this.#now), at: now };
      this.#buckets.set(address, entry);
    }
    entry.at = now;
    return entry.bucket.take();
  }

  #forgetRefilled(now: number): void {
    const refillMs = 3_600_000;
    for (const [address, entry] of this.#buckets)
      if (now - entry.at >= refillMs) this.#buckets.delete(address);
  }
}
