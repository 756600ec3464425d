import {
  CLOSE_CODES,
  isIdHex,
  MAX_TOKEN_BYTES,
  MEMBERSHIP_REFUSALS,
  MIN_TOKEN_BYTES,
  parseOfferedSubprotocols,
} from "@shoal/client/protocol";
import { hashToken, tokenMatches } from "../auth.ts";
import { decideAppeal } from "../membership-appeal.ts";
import { checkSpaceClaim, SPACE_CLAIM_REFUSALS } from "../space-claim-check.ts";
import { resolveRelayLimits, type RelayLimits } from "../limits.ts";
import { RelayMetrics } from "../metrics.ts";
import { silentLog, type RelayLog } from "../relay-log.ts";
import { RelaySession } from "../relay-session.ts";
import { SpaceHub } from "../space-hub.ts";
import { SpaceMemberships } from "../space-memberships.ts";
import { MemoryStore } from "../store/memory-store.ts";
import type { RelayStore } from "../store/store.ts";

/**
 * The server end of an in-memory connection, as `memoryTransport` in `@shoal/client` hands it over.
 * Declared here structurally so the relay keeps depending on the client's protocol module only.
 */
export interface InProcessServerEnd {
  readonly closed: boolean;
  readonly bufferedAmount: number;
  onMessage: ((frame: Uint8Array) => void) | undefined;
  onClose: ((code: number, reason: string) => void) | undefined;
  send(frame: Uint8Array): void;
  close(code?: number, reason?: string): void;
}

/** Options of `inProcessRelay`; every part defaults to a fresh in-memory one. */
export interface InProcessRelayOptions {
  store?: RelayStore;
  limits?: Partial<RelayLimits>;
  metrics?: RelayMetrics;
  hub?: SpaceHub;
  log?: RelayLog;
}

/** A relay without sockets: plug `accept` into `memoryTransport`. */
export interface InProcessRelay {
  /**
   * Handles one connection exactly as `GET /sync/<space>` plus its WebSocket do in `createApp`; `claim`
   * is what the client would offer as its `shoal-claim.` subprotocol (required for an unknown space),
   * `items` further subprotocol items it would offer (`shoal-device.`, `shoal-invitation.`: a space
   * with members requires them).
   */
  accept(
    space: string,
    token: Uint8Array,
    server: InProcessServerEnd,
    claim?: Uint8Array,
    items?: readonly string[],
  ): Promise<void>;
  /**
   * Judges an appeal exactly as `POST /sync/<space>/appeal` does (`decideAppeal`), with the token as
   * bytes and the proofs as subprotocol items; resolves whether the device is let in now. Plug it into
   * `memoryTransport`'s `appeal` option.
   */
  appeal(
    space: string,
    token: Uint8Array,
    proofs: readonly string[],
    commits: readonly Uint8Array[],
  ): Promise<boolean>;
  store: RelayStore;
  metrics: RelayMetrics;
  /** Closes every open connection with 1001, as a relay shutdown does; new connections still work. */
  disconnectAll(): void;
  /** Disconnects everyone, refuses later connections with 1006 (nothing listening), closes the store. */
  close(): Promise<void>;
}

// No listener: what a browser reports when the TCP connection is refused (RFC 6455 7.1.5).
const ABNORMAL = 1006;

/**
 * The real relay logic (token check, `RelaySession`, fan-out hub, metrics, limits) behind an
 * in-memory transport, so client tests run against the relay's behaviour without a port or a process.
 * An HTTP refusal with status S becomes close code 4000 + S before `onOpen` (4401 no token, 4403 wrong
 * token or no valid claim for an unknown space, 4400 bad space id, 4429 too many connections), which is
 * how `webSocketTransport` reports them.
 *
 * @example
 * const relay = inProcessRelay();
 * const transport = memoryTransport(relay.accept); // client/src/transports/memory-transport.ts
 * // ... run clients against `transport`, then:
 * await relay.close();
 */
export function inProcessRelay(options: InProcessRelayOptions = {}): InProcessRelay {
  const store = options.store ?? new MemoryStore();
  const limits = resolveRelayLimits(options.limits);
  const metrics = options.metrics ?? new RelayMetrics();
  const hub = options.hub ?? new SpaceHub();
  const log = options.log ?? silentLog;
  const memberships = new SpaceMemberships(store, (space) => hub.count(space) > 0);
  let stopped = false;

  const refuse = (server: InProcessServerEnd, space: string, status: number, text: string): void => {
    metrics.upgradeRefused(status);
    log("upgrade.refused", { space: isIdHex(space) ? space : undefined, status });
    server.close(4000 + status, text);
  };

  // The same checks, in the same order, as `createApp`'s `/sync/:space` route (Origin and the
  // Upgrade header do not exist here; the token arrives as bytes, not as a subprotocol).
  async function accept(
    space: string,
    token: Uint8Array,
    server: InProcessServerEnd,
    claim?: Uint8Array,
    items: readonly string[] = [],
  ): Promise<void> {
    if (stopped) return server.close(ABNORMAL, "relay is closed");
    if (!isIdHex(space)) return refuse(server, space, 400, "A space id is 32 lowercase hex characters.");
    if (token.length < MIN_TOKEN_BYTES || token.length > MAX_TOKEN_BYTES) {
      return refuse(server, space, 401, "Missing or malformed access token.");
    }
    let creator: Uint8Array | undefined;
    if ((await store.tokenHash(space)) === undefined) {
      const checked = checkSpaceClaim(space, token, claim);
      if ("fault" in checked) {
        metrics.refused(`claim-${checked.fault}`);
        return refuse(server, space, 403, SPACE_CLAIM_REFUSALS[checked.fault]);
      }
      creator = checked.creator;
    }
    if (server.closed) return;
    const stored = await store.registerSpace(space, hashToken(token), creator);
    if (server.closed) return;
    if (stopped) return server.close(ABNORMAL, "relay is closed");
    if (!tokenMatches(token, stored)) return refuse(server, space, 403, "Wrong access token for this space.");
    const offered = parseOfferedSubprotocols(items.join(","));
    const admitted = await memberships.admit(space, offered.device, offered.invitation, Date.now());
    if (server.closed) return;
    if (admitted && "fault" in admitted) {
      metrics.refused(admitted.fault);
      return refuse(server, space, 403, MEMBERSHIP_REFUSALS[admitted.fault]);
    }
    if (hub.count(space) >= limits.maxConnectionsPerSpace) {
      return refuse(server, space, 429, "Too many connections to this space.");
    }
    const session = new RelaySession({
      space,
      store,
      hub,
      metrics,
      limits,
      log,
      memberships,
      device: admitted?.device,
      socket: {
        send: (bytes) => server.send(bytes),
        close: (code, reason) => server.close(code, reason),
        bufferedAmount: () => server.bufferedAmount,
      },
    });
    server.onMessage = (frame) => session.receive(frame);
    server.onClose = () => session.closed();
  }

  async function appeal(
    space: string,
    token: Uint8Array,
    proofs: readonly string[],
    commits: readonly Uint8Array[],
  ): Promise<boolean> {
    if (stopped || !isIdHex(space)) return false;
    const stored = await store.tokenHash(space);
    if (stored === undefined || !tokenMatches(token, stored)) return false;
    const offered = parseOfferedSubprotocols(proofs.join(","));
    const outcome = await decideAppeal(
      { store, hub, limits, metrics, log, memberships },
      space,
      offered.device,
      commits,
    );
    metrics.appealed(outcome.status);
    return "json" in outcome && outcome.json.admitted;
  }

  return {
    accept,
    appeal,
    store,
    metrics,
    disconnectAll: () => hub.closeAll(CLOSE_CODES.goingAway, "relay shutting down"),
    close: async () => {
      if (stopped) return;
      stopped = true;
      hub.closeAll(CLOSE_CODES.goingAway, "relay shutting down");
      await store.close();
    },
  };
}
