import type { Dexie } from "dexie";
import type { Backoff, SessionReplica } from "../sync/space-session.ts";
import type { PeerReplica } from "./peer-replica.ts";

/** The minimal `RTCPeerConnection` constructor this module needs (the browser's fits). */
export type PeerConnectionConstructor = new (config: RTCConfiguration) => RTCPeerConnection;

/** Options of `PeerNetwork`. */
export interface PeerNetworkOptions {
  dexie: Dexie;
  replica: SessionReplica & PeerReplica;
  /** STUN/TURN servers; none by default (devices on one network reach each other by host candidates). */
  iceServers?: RTCIceServer[];
  /** Default `globalThis.RTCPeerConnection`. */
  RTCPeerConnection?: PeerConnectionConstructor;
  /** A negotiation whose channel is not open after this long is abandoned and tried again (default 15 s). */
  negotiationTimeoutMs?: number;
  /** Reconnect delays of the sessions over peer links. */
  backoff?: Backoff;
}
