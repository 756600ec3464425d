import type { ShoalError } from "../errors.ts";
import type { DeviceIdentity } from "../identity/device-identity.ts";
import type { ApplyReport } from "../replica/apply-remote.ts";
import type { Commit } from "../replica/commit.ts";
import type { SessionCompaction } from "../snapshots/compacted-snapshot.ts";
import type { SnapshotContent } from "../snapshots/snapshot-codec.ts";
import type { SnapshotCoverage } from "../snapshots/snapshot-coverage.ts";
import type { MissingCommits, StuckCommit } from "../status/sync-status.ts";
import type { DeviceId, SpaceId, VersionVector } from "../types.ts";

/** The replica operations a session needs (implemented by the database). */
export interface SessionReplica {
  readonly device: DeviceId;
  /** This device's keys, which sign its proofs to the relay (absent: no WebCrypto). */
  readonly identity?: DeviceIdentity;
  vector(spaces?: SpaceId[]): Promise<VersionVector>;
  applyCommits(commits: readonly Commit[]): Promise<ApplyReport>;
  /** Records what the relay acknowledged as durably stored. */
  recordAcks(space: SpaceId, entries: { device: DeviceId; seq: number }[]): Promise<void>;
  /** A consistent snapshot of the space, for publishing. */
  readSnapshot(space: SpaceId): Promise<SnapshotContent>;
  /** Bootstraps the space from a snapshot; false if the space is no longer empty here. */
  importSnapshot(content: SnapshotContent): Promise<boolean>;
  /**
   * Forgets the space (a snapshot that contradicts the sealed commits), to replay it from the commits;
   * false if it cannot (this device made commits of its own on top). Absent where snapshots are not used.
   */
  discardSpace?(space: SpaceId): Promise<boolean>;
  /** Commits this device made in the space before leaving it (0 if it never left it; see `leaveSpace`). */
  ownCommitsMade?(space: SpaceId): Promise<number>;
  /** Removes what is still stored of a space this device left (see `sweepLeftSpace`). */
  sweepLeftSpace?(space: SpaceId): Promise<void>;
  /** Where the newest known snapshot's coverage is kept across restarts (absent: per session). */
  snapshotCoverage?(space: SpaceId): SnapshotCoverage;
  /** Compacted snapshots of spaces with members (PROTOCOL.md 12); absent: never published or read. */
  compaction?: SessionCompaction;
}

/** State of one session, as shown in `db.status`. */
export type SessionState = "connecting" | "connected" | "offline" | "refused" | "stopped";

/** What a session reports to the engine. */
export interface SessionHooks {
  state(state: SessionState, detail?: string): void;
  error(error: ShoalError): void;
  /** A pull finished with nothing more to fetch: this replica holds everything the relay had. */
  synced(): void;
  acked(): void;
  /** The relay stored a snapshot this session published. */
  snapshotStored?(): void;
  /** Commits this session knows of and lacks, or cannot get the relay to take (each call: the whole list). */
  blocked?(missing: readonly MissingCommits[], stuck: readonly StuckCommit[]): void;
}

/** Reconnect delays: `baseMs` doubling per failed attempt up to `maxMs`, with jitter. */
export interface Backoff {
  baseMs: number;
  maxMs: number;
}
