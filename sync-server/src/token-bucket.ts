/**
 * Tokens that refill continuously at `perSecond` up to `burst`: the arithmetic shared by the relay's
 * frame rate limit (`RateLimiter`, refuses when empty) and byte throttle (`ByteRate`, goes into debt).
 * The clock is injectable so tests need no waiting.
 *
 * @example
 * class Frames extends TokenBucket { take() { return this.refill() >= 1 && (this.spend(1), true); } }
 */
export abstract class TokenBucket {
  protected readonly perSecond: number;
  readonly #burst: number;
  readonly #now: () => number;
  #tokens: number;
  #last: number;

  constructor(perSecond: number, burst: number, now: () => number = () => performance.now()) {
    this.perSecond = perSecond;
    this.#burst = burst;
    this.#now = now;
    this.#tokens = burst;
    this.#last = now();
  }

  /** Adds what refilled since the last call; returns the tokens now held (negative while in debt). */
  protected refill(): number {
    const now = this.#now();
    this.#tokens = Math.min(this.#burst, this.#tokens + ((now - this.#last) / 1000) * this.perSecond);
    this.#last = now;
    return this.#tokens;
  }

  /** Spends `n` tokens, going into debt if there are fewer. */
  protected spend(n: number): void {
    this.#tokens -= n;
  }
}
