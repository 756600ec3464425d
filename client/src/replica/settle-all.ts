/**
 * Like `Promise.all`, but settles only when every promise has: the first rejection (in argument order)
 * is thrown after the rest have finished. Used for IndexedDB requests issued together in one
 * transaction, so that none is left rejecting unobserved once a failure aborts the transaction.
 *
 * @example
 * const [rows, vectors] = await settleAll([docs.bulkGet(ids), vectorsT.bulkGet(keys)] as const);
 */
export async function settleAll<const T extends readonly unknown[]>(
  promises: T,
): Promise<{ -readonly [K in keyof T]: Awaited<T[K]> }> {
  const results = await Promise.allSettled(promises);
  const failed = results.find((r) => r.status === "rejected");
  if (failed) throw failed.reason;
  return results.map((r) => (r as PromiseFulfilledResult<unknown>).value) as {
    -readonly [K in keyof T]: Awaited<T[K]>;
  };
}
