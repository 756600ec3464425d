import type { RelayLimits } from "./limits.ts";

/** A connection's byte burst: a few of the largest frames at once, or two seconds at its rate. */
export function byteBurst(perSecond: number, limits: RelayLimits): number {
  return Math.max(2 * perSecond, 4 * limits.maxFrameBytes);
}
