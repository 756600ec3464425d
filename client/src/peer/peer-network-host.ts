import type { ShoalError } from "../errors.ts";
import type { TransportStatus } from "../status/sync-status.ts";
import type { SpaceId } from "../types.ts";

/** What the peer network reports to the sync engine. */
export interface PeerNetworkHost {
  /** A peer connection's status (null: it is gone). `key` is stable per (space, peer device). */
  status(key: string, status: TransportStatus | null): void;
  error(error: ShoalError): void;
  /** A pull over a peer link found nothing more to fetch. */
  synced(space: SpaceId): void;
}
