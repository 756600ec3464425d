import type { SnapshotContent } from "./snapshot-codec.ts";

/**
 * The part of a space's snapshot that can be published, or null if none can now.
 *
 * A quarantined commit holds its slot in the vector but has no entry in the log (its content was
 * refused), and a snapshot must carry every commit of each device from 1 up to its vector's sequence:
 * a vector naming the quarantined slot made every joiner refuse the snapshot ("heads, vector and
 * commits disagree"), so honest snapshots of any space holding one poison commit were useless, and
 * counted as forged (hostile soak, 2026-12-06). So each device's sequence stops before its first slot
 * without a log entry (a device whose first commit was quarantined is left out): joiners then pull
 * that commit from the relay and quarantine it themselves. If the device has commits in the log after
 * that slot, the records already show them and no vector can describe the snapshot: null.
 *
 * @example
 * const content = publishableSnapshot(await replica.readSnapshot(space));
 * if (content) await snapshots.publish(content);
 */
export function publishableSnapshot(content: SnapshotContent): SnapshotContent | null {
  const logged = new Map<string, Set<number>>();
  for (const c of content.commits) {
    const seqs = logged.get(c.device) ?? new Set<number>();
    seqs.add(c.seq);
    logged.set(c.device, seqs);
  }
  const vector: Record<string, number> = {};
  for (const [device, seq] of Object.entries(content.vector)) {
    const seqs = logged.get(device) ?? new Set<number>();
    let next = 1;
    while (next <= seq && seqs.has(next)) next++;
    if (next <= seq && [...seqs].some((s) => s > next)) return null;
    if (next > 1) vector[device] = next - 1;
  }
  return {
    ...content,
    vector,
    commits: content.commits.filter((c) => c.seq <= (vector[c.device] ?? 0)),
  };
}
