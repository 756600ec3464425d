import { openDatabase, type Change } from "../../src/index.ts";
import type { Db, Replica } from "./fuzz-settle.ts";

/**
 * Change feed resumption at the end of a scenario (issue 17 item 3): every replica's feed, read in two
 * parts with a reload in between (the first part through the async iterator, then the database is
 * closed and opened again, and the rest read from the first part's last cursor through `batches()`),
 * must list each commit the replica holds exactly once: the same ids, in the commit log's order, as its
 * export (read through the per-device sequence index, a different path than the feed's). The split
 * point comes from the seed and the replica's index, not the random stream, so the scenario stays
 * deterministic. Returns the failures (empty when none). The replicas must have stopped syncing; each
 * is closed afterwards.
 */
export async function feedFailures(
  replicas: readonly Replica[],
  seed: number,
  collections: Parameters<typeof openDatabase>[0]["collections"],
): Promise<string[]> {
  const failures: string[] = [];
  for (const [i, r] of replicas.entries()) {
    const db = r.db;
    const expected = await expectedIds(db);
    const n = expected.length;
    const k = n === 0 ? 0 : (seed * 31 + i * 7) % (n + 1);
    const first: Change[] = [];
    if (k > 0) {
      const it = db.changes({ batchSize: 1 + ((seed + i) % 5) })[Symbol.asyncIterator]();
      while (first.length < k) {
        const next = await it.next();
        if (next.done) break;
        first.push(next.value);
      }
      await it.return?.();
    }
    const cursor = first.at(-1)?.cursor;
    // "Reload": close, open again from storage, resume from the cursor.
    await db.close();
    const again = (await openDatabase({ name: db.name, collections, persist: false })) as unknown as Db;
    const rest: Change[] = [];
    try {
      if (n - k > 0) {
        const stop = new AbortController();
        for await (const b of again.changes({ since: cursor, batchSize: 3, signal: stop.signal }).batches()) {
          rest.push(...b.changes);
          if (rest.length >= n - k) stop.abort();
        }
      }
    } finally {
      await again.close();
    }
    const got = [...first, ...rest].map((c) => c.commit as string);
    const dupes = got.filter((id, j) => got.indexOf(id) !== j);
    if (dupes.length > 0) failures.push(`${r.name}: the feed repeats ${dupes.slice(0, 3).join(", ")}`);
    const missing = expected.filter((id) => !got.includes(id));
    if (missing.length > 0) failures.push(`${r.name}: the feed skips ${missing.slice(0, 3).join(", ")}`);
    if (dupes.length === 0 && missing.length === 0 && got.join() !== expected.join())
      failures.push(`${r.name}: the feed's order is not the commit log's (split after ${k} of ${n})`);
  }
  return failures;
}

/** The replica's commits in its log order: its whole export, which is sorted by log position. */
async function expectedIds(db: Db): Promise<string[]> {
  return (await db.exportCommits({})).map((c) => c.id as string);
}
