/** One candidate commit for a read: its arrival order, its size, and how to fetch it. */
export interface ReadCandidate<T> {
  /** Arrival order within the space (increasing). */
  order: number;
  size: number;
  ref: T;
}

/**
 * Picks what one `read` returns, shared by the adapters: merges the per-device runs (each already in
 * sequence order) by arrival order, then takes a prefix within the byte and count budgets, always at
 * least one commit so a commit bigger than `maxBytes` cannot stall a pull forever.
 *
 * @example
 * const { picked, more } = selectForRead([runA, runB], 1 << 20, 1024);
 */
export function selectForRead<T>(
  runs: ReadCandidate<T>[][],
  maxBytes: number,
  maxCount: number,
): { picked: ReadCandidate<T>[]; bytes: number; more: boolean } {
  const all = runs.flat().sort((a, b) => a.order - b.order);
  const picked: ReadCandidate<T>[] = [];
  let bytes = 0;
  for (const c of all) {
    if (picked.length >= maxCount) break;
    if (picked.length > 0 && bytes + c.size > maxBytes) break;
    picked.push(c);
    bytes += c.size;
  }
  return { picked, bytes, more: picked.length < all.length };
}
