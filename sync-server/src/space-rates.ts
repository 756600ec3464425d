import { ByteRate } from "./byte-rate.ts";

/**
 * One shared `ByteRate` per space with open connections, so all connections of a space together stay
 * under `spaceBytesPerSecond`. A space's budget lives while it has connections (reference counted).
 *
 * @example
 * const rate = spaceRates.acquire(space); // on open
 * rate.take(bytes);
 * spaceRates.release(space); // on close
 */
export class SpaceRates {
  readonly #perSecond: number;
  readonly #burst: number;
  readonly #spaces = new Map<string, { rate: ByteRate; users: number }>();

  constructor(perSecond: number, burst: number) {
    this.#perSecond = perSecond;
    this.#burst = burst;
  }

  /** The space's shared budget; call `release` once per `acquire`. */
  acquire(space: string): ByteRate {
    let entry = this.#spaces.get(space);
    if (!entry)
      this.#spaces.set(space, (entry = { rate: new ByteRate(this.#perSecond, this.#burst), users: 0 }));
    entry.users += 1;
    return entry.rate;
  }

  release(space: string): void {
    const entry = this.#spaces.get(space);
    if (!entry) return;
    entry.users -= 1;
    if (entry.users <= 0) this.#spaces.delete(space);
  }
}
