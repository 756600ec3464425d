import type { AccessDenied } from "../errors.ts";
import type { TransportStatus } from "../status/sync-status.ts";
import type { SpaceSession } from "../sync/space-session.ts";
import type { DataChannelLike } from "../transports/webrtc-transport.ts";
import type { TransportConnection } from "../transports/transport.ts";
import type { PeerResponder } from "./peer-responder.ts";

/** One negotiation (and, once open, one data channel) with one peer device in one space. */
export interface PeerLink {
  readonly device: string;
  readonly nid: string;
  readonly role: "client" | "responder";
  readonly pc: RTCPeerConnection;
  readonly statusKey: string;
  remoteSession: string;
  /** The remote description is set: candidates can be added. */
  remoteSet: boolean;
  pendingIce: RTCIceCandidateInit[];
  /** Our offer or answer went out: our own candidates may follow it. */
  described: boolean;
  outIce: RTCIceCandidateInit[];
  opened: boolean;
  closed: boolean;
  session?: SpaceSession;
  /** The session's connection (client side), over which a refusal goes out. */
  conn?: TransportConnection;
  responder?: PeerResponder;
  /** The peer refused this device (its membership log): the link's status stays `refused`. */
  refusedBy?: AccessDenied;
  /** The open channel, watched after a refusal until the refusal frame has left. */
  channel?: DataChannelLike;
  /** This device refused the peer: the connection closes only once the channel has. */
  refusing?: boolean;
  timer: ReturnType<typeof setTimeout> | null;
  status: TransportStatus;
}
