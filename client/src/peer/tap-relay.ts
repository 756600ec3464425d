import { MESSAGE_TYPE_BYTES, PROTOCOL_VERSION } from "../protocol/index.ts";
import type { Transport, TransportHandlers } from "../transports/transport.ts";
import type { SpaceId } from "../types.ts";
import type { RelayLink } from "./space-state.ts";

const SIGNAL_TYPE = MESSAGE_TYPE_BYTES.signal;
const WELCOME_TYPE = MESSAGE_TYPE_BYTES.welcome;

/** What the connections of a tapped relay transport tell their `PeerNetwork`. */
export interface RelayTap {
  /** A `signal` frame came over a connection to `space` (the session never sees it). */
  signal(space: SpaceId, frame: Uint8Array): void;
  /** The connection was welcomed: signals can go over it. */
  up(space: SpaceId, link: RelayLink): void;
  /** The connection closed. */
  down(space: SpaceId, link: RelayLink): void;
}

/**
 * Wraps a relay transport so its connections also carry signals: `signal` frames are taken out of the
 * stream and handed to `tap`, which also hears when each connection is welcomed and when it closes.
 */
export function tapRelay(inner: Transport, tap: RelayTap): Transport {
  return {
    kind: inner.kind,
    get label(): string {
      return inner.label;
    },
    connect: (space, token, handlers, claim, proofs) => {
      const link: RelayLink = { ready: false, conn: null };
      const relayHandlers: TransportHandlers = {
        onOpen: () => handlers.onOpen(),
        onMessage: (frame) => {
          if (frame[0] === PROTOCOL_VERSION && frame[1] === SIGNAL_TYPE) {
            tap.signal(space, frame);
            return;
          }
          handlers.onMessage(frame);
          if (frame[1] === WELCOME_TYPE && !link.ready) {
            link.ready = true;
            tap.up(space, link);
          }
        },
        onClose: (reason, code) => {
          link.ready = false;
          tap.down(space, link);
          handlers.onClose(reason, code);
        },
      };
      const conn = inner.connect(space, token, relayHandlers, claim, proofs);
      link.conn = conn;
      return conn;
    },
  };
}
