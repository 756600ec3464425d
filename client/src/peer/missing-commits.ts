import { MAX_COMMITS_PER_BATCH } from "../protocol/index.ts";
import type { DeviceId, SpaceId } from "../types.ts";
import type { PeerReplica } from "./peer-replica.ts";
import type { PeerSealer } from "./peer-sealer.ts";

/**
 * The commits a replica at `since` lacks, sealed, in this replica's causal order (so the receiver
 * never gets a commit before one it depends on), within `budget` bytes (at least one commit, so a big
 * one cannot stall the peer). `more` when some were left out.
 */
export async function missingCommits(
  replica: PeerReplica,
  sealer: PeerSealer,
  space: SpaceId,
  since: Record<string, number>,
  budget: number,
): Promise<{ commits: Uint8Array[]; more: boolean; last: Map<string, number> }> {
  const order = await replica.exportCommits(
    { [space]: since },
    { spaces: [space], limit: MAX_COMMITS_PER_BATCH + 1 },
  );
  const taken = order.slice(0, MAX_COMMITS_PER_BATCH);
  // Seal per device in one range each: the taken commits of a device are contiguous from since + 1.
  const bySeq = new Map<string, Uint8Array>();
  const last = new Map<string, number>();
  for (const c of taken) last.set(c.device, Math.max(last.get(c.device) ?? 0, c.seq));
  for (const [device, to] of last) {
    const from = (since[device] ?? 0) + 1;
    const sealed = await sealer.sealedRange(device as DeviceId, from, to);
    sealed.forEach((b, i) => bySeq.set(`${device}.${from + i}`, b));
  }
  const commits: Uint8Array[] = [];
  const sent = new Map<string, number>();
  let bytes = 0;
  for (const c of taken) {
    const b = bySeq.get(`${c.device}.${c.seq}`)!;
    if (commits.length > 0 && bytes + b.length > budget) break;
    commits.push(b);
    bytes += b.length;
    sent.set(c.device, c.seq);
  }
  return { commits, more: commits.length < order.length, last: sent };
}
