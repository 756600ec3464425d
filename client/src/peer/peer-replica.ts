import type { ApplyReport } from "../replica/apply-remote.ts";
import type { Commit } from "../replica/commit.ts";
import type { DeviceId, SpaceId, VersionVector } from "../types.ts";

/** The replica operations a responder needs (the database provides them). */
export interface PeerReplica {
  readonly device: DeviceId;
  vector(spaces?: SpaceId[]): Promise<VersionVector>;
  applyCommits(commits: readonly Commit[]): Promise<ApplyReport>;
  /** The commits a replica at `since` lacks, in this replica's causal order. */
  exportCommits(
    since: VersionVector,
    options?: { spaces?: readonly SpaceId[]; limit?: number },
  ): Promise<Commit[]>;
}
