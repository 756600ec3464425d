import type { SessionCompaction } from "../snapshots/compacted-snapshot.ts";
import type { SnapshotExchange } from "../snapshots/snapshot-exchange.ts";
import type { SpaceId } from "../types.ts";

/**
 * Publishes a compacted snapshot of a space with members (`db.compact`, PROTOCOL.md 12): built and
 * sealed by `compaction.build`, sent only when the relay holds every commit it covers (`acked`, the
 * relay's heads as this session knows them: a snapshot may not name commits the relay lacks), and, once
 * the relay stored it, recorded with its hash so that the `compact` operation can name it. Resolves
 * (wrapped) to the relay's coming answer, or false when there is nothing to publish or the relay lacks
 * some of it.
 *
 * @example
 * const answer = await publishCompacted(space, compaction, acked, exchange);
 */
export async function publishCompacted(
  space: SpaceId,
  compaction: SessionCompaction,
  acked: ReadonlyMap<string, number>,
  exchange: SnapshotExchange,
): Promise<{ stored: Promise<boolean> } | false> {
  const built = await compaction.build(space);
  if (!built) return false;
  for (const [d, seq] of Object.entries(built.vector)) if ((acked.get(d) ?? 0) < seq) return false;
  const answer = exchange.publishSealed(built.vector, built.sealed);
  const stored = answer.stored.then(async (ok) => {
    if (ok) await compaction.published(space, { vector: built.vector, snapshot: built.hash });
    return ok;
  });
  return { stored };
}
