import { MAX_VECTOR_ENTRIES } from "./limits.ts";
import type { VectorEntry } from "./messages.ts";

/**
 * Cuts a vector into the pages of a paged `welcome` or `pull` (PROTOCOL.md section 2): at most
 * `pageSize` entries each, in order, and always at least one page (an empty vector is one empty page),
 * so the last page, the one sent with `more` clear, always exists.
 *
 * @example
 * const pages = vectorPages(vector);
 * pages.forEach((page, i) => send({ type: "pull", space, vector: page, maxBytes, more: i < pages.length - 1 }));
 */
export function vectorPages(vector: readonly VectorEntry[], pageSize = MAX_VECTOR_ENTRIES): VectorEntry[][] {
  if (!Number.isSafeInteger(pageSize) || pageSize < 1) throw new RangeError("pageSize must be at least 1.");
  const pages: VectorEntry[][] = [];
  for (let at = 0; at < vector.length; at += pageSize) pages.push(vector.slice(at, at + pageSize));
  if (pages.length === 0) pages.push([]);
  return pages;
}
