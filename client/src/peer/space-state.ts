import type { SpaceSealer } from "../sealing/sealer.ts";
import type { TransportConnection } from "../transports/transport.ts";
import type { SpaceId } from "../types.ts";
import type { PeerLink } from "./peer-link.ts";

/** A relay connection that completed hello, over which signals can go. */
export interface RelayLink {
  ready: boolean;
  conn: TransportConnection | null;
}

/** One space's signalling state. */
export interface SpaceState {
  readonly id: SpaceId;
  readonly bytes: Uint8Array;
  readonly key: Uint8Array;
  readonly signalKey: Promise<CryptoKey>;
  readonly sealer: SpaceSealer;
  readonly relays: Set<RelayLink>;
  readonly peers: Map<string, PeerLink>;
  /** Signals are handled one at a time, so an ICE candidate never overtakes the offer before it. */
  queue: Promise<void>;
  announceTimer: ReturnType<typeof setTimeout> | null;
  failures: number;
}
