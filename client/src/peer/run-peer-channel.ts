import type { AccessDenied } from "../errors.ts";
import { MESSAGE_TYPE_BYTES, decodeMessage } from "../protocol/index.ts";
import type { TransportStatus } from "../status/sync-status.ts";
import { SpaceSession, type Backoff, type SessionReplica } from "../sync/space-session.ts";
import type { Transport } from "../transports/transport.ts";
import {
  openDataChannelLink,
  webRtcTransport,
  type DataChannelLike,
} from "../transports/webrtc-transport.ts";
import type { DeviceId, SpaceId } from "../types.ts";
import { peerRefusalIn, type PeerRefusal } from "./peer-admission.ts";
import type { PeerLink } from "./peer-link.ts";
import type { PeerNetworkHost } from "./peer-network-host.ts";
import type { PeerReplica } from "./peer-replica.ts";
import { PeerResponder } from "./peer-responder.ts";
import type { SpaceState } from "./space-state.ts";

const ERROR_TYPE = MESSAGE_TYPE_BYTES.error;

/** What running the protocol over a peer's channel needs of its `PeerNetwork`. */
export interface PeerChannelContext {
  readonly replica: SessionReplica & PeerReplica;
  /** Reconnect delays of the sessions over peer links. */
  readonly backoff: Backoff | undefined;
  /** The engine's host while the network is started (null when stopped). */
  host(): PeerNetworkHost | null;
  /** Why the peer's device may not sync the space with this device now (undefined: it may). */
  admit(space: SpaceId, device: string): Promise<PeerRefusal | undefined>;
  /** Updates and reports the link's status. */
  report(link: PeerLink, patch: Partial<TransportStatus>): void;
  /** Drops the link (and, with `again`, announces again later). */
  closeLink(st: SpaceState, link: PeerLink, reason: string, again: boolean): void;
  /** This device refuses the peer's device: one fatal `membership` error, then the link closes. */
  refuse(st: SpaceState, link: PeerLink, refusal: PeerRefusal): void;
}

/** Runs the protocol over the channel: a session on the smaller device, a responder on the larger. */
export function runPeerChannel(
  net: PeerChannelContext,
  st: SpaceState,
  link: PeerLink,
  channel: DataChannelLike,
): void {
  const device = link.device as DeviceId;
  link.channel = channel;
  const opened = () => {
    if (link.opened) return;
    link.opened = true;
    st.failures = 0;
    if (link.timer) clearTimeout(link.timer);
    link.timer = null;
  };
  const gone = (reason?: string) =>
    queueMicrotask(() => net.closeLink(st, link, reason ?? "channel closed", true));
  const admit = () => net.admit(st.id, link.device);
  if (link.role === "client") {
    const replica: SessionReplica = {
      device: net.replica.device,
      // Every pull and upload starts from the vector: the membership check goes first, so a device
      // removed while its link is open gets nothing after the removal, not even this vector.
      vector: async (spaces) => {
        const refusal = await admit();
        if (!refusal) return net.replica.vector(spaces);
        net.refuse(st, link, refusal);
        return {};
      },
      applyCommits: (commits) => net.replica.applyCommits(commits),
      // A peer's ack is not the relay's receipt: `pendingCommits` and `durability` stay about the relay.
      recordAcks: async () => {},
      readSnapshot: (space) => net.replica.readSnapshot(space),
      importSnapshot: (content) => net.replica.importSnapshot(content),
    };
    link.session = new SpaceSession({
      space: st.id,
      replica,
      sealer: st.sealer,
      transport: watchRefusal(net, st, link, webRtcTransport({ channel, peer: device })),
      token: new Uint8Array(0),
      spaceKey: st.key,
      backoff: net.backoff,
      // Peers keep no snapshots: never ask one for a snapshot nor publish to it.
      snapshots: { bootstrap: false, publishEvery: 0 },
      hooks: {
        state: (state, detail) => {
          if (state === "connected") opened();
          net.report(link, { state, detail });
          if (state === "offline" || state === "refused") gone(detail);
        },
        error: (e) => net.host()?.error(e),
        synced: () => {
          net.report(link, { lastSyncedAt: Date.now() });
          net.host()?.synced(st.id);
        },
        acked: () => {},
      },
    });
    link.session.start();
  } else {
    link.responder = new PeerResponder({
      space: st.id,
      peer: device,
      replica: net.replica,
      sealer: st.sealer,
      connect: (handlers) => openDataChannelLink(channel, handlers),
      admit: async () => {
        const refusal = await admit();
        // The responder refuses by itself: its connection must outlive the refusal frame.
        if (refusal) link.refusing = true;
        return refusal;
      },
      hooks: {
        state: (state, detail) => {
          if (state === "connected") opened();
          net.report(link, { state, detail });
          if (state === "offline" || state === "refused") gone(detail);
        },
        error: (e) => {
          if (e.code === "AccessDenied") link.refusedBy = e as AccessDenied;
          net.host()?.error(e);
        },
      },
    });
    link.responder.start();
  }
}

/**
 * The session's transport, watched for the peer's refusal of this device: the frame never reaches
 * the session (it would read it as a relay's); the link reports `AccessDenied` and closes.
 */
function watchRefusal(net: PeerChannelContext, st: SpaceState, link: PeerLink, inner: Transport): Transport {
  return {
    kind: inner.kind,
    label: inner.label,
    connect: (space, token, handlers) => {
      const conn = inner.connect(space, token, {
        onOpen: () => handlers.onOpen(),
        onClose: (reason, code) => handlers.onClose(reason, code),
        onMessage: (frame) => {
          const refused = frame[1] === ERROR_TYPE ? refusalOf(frame) : undefined;
          if (!refused) return handlers.onMessage(frame);
          link.refusedBy = refused;
          net.host()?.error(refused);
          net.report(link, { state: "refused", detail: refused.message });
          net.closeLink(st, link, refused.message, true);
        },
      });
      link.conn = conn;
      return conn;
    },
  };
}

/** The peer's refusal of this device in an `error` frame, or undefined (also for a malformed frame). */
function refusalOf(frame: Uint8Array): AccessDenied | undefined {
  try {
    return peerRefusalIn(decodeMessage(frame));
  } catch {
    return undefined; // the session reads it again and reports what is wrong with it
  }
}
