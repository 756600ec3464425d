import type { DeviceId, SpaceId } from "../types.ts";
import type { IntegrityKind } from "../sealing/integrity.ts";
import type { SessionState } from "../sync/space-session.ts";

/** A device another replica's commits showed to be misbehaving (details in `db.integrity`). */
export interface FlaggedDevice {
  readonly space: SpaceId;
  readonly device: DeviceId;
  readonly kind: IntegrityKind;
  readonly seq: number;
}

/**
 * Commits this replica knows exist (a source served them) but does not hold: `retrying` while a damaged
 * download is fetched again with backoff, `bad-at-source` once the source served the same bad bytes
 * twice (given up on until the next connection; the device's later commits wait behind it).
 */
export interface MissingCommits {
  readonly space: SpaceId;
  readonly device: DeviceId;
  /** The first sequence missing. */
  readonly seq: number;
  readonly reason: "retrying" | "bad-at-source";
}

/** A commit of this device the relay keeps refusing (`Relay:chain` or `Relay:conflict`). */
export interface StuckCommit {
  readonly space: SpaceId;
  readonly device: DeviceId;
  /** The first sequence the relay does not take. */
  readonly seq: number;
  /** The relay's refusal, as in `lastError`. */
  readonly code: string;
}

/** One connection as `db.status` shows it. */
export interface TransportStatus {
  readonly kind: string;
  /** Where it connects (never a token). */
  readonly label: string;
  readonly space: SpaceId;
  readonly state: SessionState;
  /** When a pull last finished with nothing more to fetch (ms since 1970). */
  readonly lastSyncedAt?: number;
  /** When this device last published a snapshot of the space that the relay stored. */
  readonly lastSnapshotAt?: number;
  readonly detail?: string;
}

/**
 * What the UI shows about sync. `pendingCommits` counts commits made on this device that no relay has
 * acknowledged yet: saved here, not yet safe elsewhere.
 */
export interface SyncStatus {
  /**
   * `local` until `sync()` is called. `refused` when the relay refuses this device's key for some
   * space (wrong key, `AccessDenied` in `lastError`; the space's transport says which): waiting does
   * not fix it, so it wins over every other state until the relay accepts a connection for that space.
   * Otherwise `synced` when every connected space has pulled all there is and none has a commit in
   * `missing` or `stuck`, `syncing` while some connected one has not, else `connecting` or `offline`.
   */
  readonly state: "local" | "offline" | "connecting" | "syncing" | "synced" | "refused";
  /** The browser's own idea of connectivity (`navigator.onLine`), true where unknown. */
  readonly online: boolean;
  readonly transports: readonly TransportStatus[];
  readonly pendingCommits: number;
  readonly lastSyncedAt?: number;
  /**
   * The last error syncing met: its stable `code`, its message for people, when (ms since the epoch),
   * and `reason`, the error's finer stable reason when it has one (e.g. `AccessDenied`: `token` for a
   * refused token, `claim` for a space the relay does not know and this device cannot register).
   */
  readonly lastError?: {
    readonly code: string;
    readonly message: string;
    readonly at: number;
    readonly reason?: string;
  };
  /** Commits known to exist that this replica lacks (absent or empty when none): never `synced` then. */
  readonly missing?: readonly MissingCommits[];
  /** Commits of this device the relay keeps refusing (absent or empty when none): never `synced` then. */
  readonly stuck?: readonly StuckCommit[];
  /** Devices `db.integrity` has findings about (absent or empty when none). */
  readonly flagged?: readonly FlaggedDevice[];
  /**
   * Which tab of this browser holds the relay connections for this database: `leader` (this tab, for
   * the other tabs too), `follower` (another tab; this status is the leader's, relayed to this tab),
   * or `single` (this tab alone, without election: no Web Locks, or `leaderElection: false`). Absent
   * while not syncing.
   */
  readonly role?: SyncRole;
}

/** See `SyncStatus.role`. */
export type SyncRole = "leader" | "follower" | "single";

/** The status before any sync. */
export const LOCAL_STATUS: SyncStatus = { state: "local", online: true, transports: [], pendingCommits: 0 };

/** The overall state from the connections' states. */
export function overallState(
  transports: readonly TransportStatus[],
  synced: ReadonlySet<string>,
): SyncStatus["state"] {
  if (transports.length === 0) return "local";
  if (transports.some((t) => t.kind === "relay" && t.state === "refused")) return "refused";
  const connected = transports.filter((t) => t.state === "connected");
  if (connected.length > 0) return connected.every((t) => synced.has(t.space)) ? "synced" : "syncing";
  return transports.some((t) => t.state === "connecting") ? "connecting" : "offline";
}
