import { Hono, type Context } from "hono";
import type { UpgradeWebSocket, WSContext, WSEvents } from "hono/ws";
import {
  isIdHex,
  MEMBERSHIP_REFUSALS,
  parseOfferedSubprotocols,
  RESIDENCY_REFUSAL,
  SUBPROTOCOL,
} from "@shoal/client/protocol";
import { accessProbe } from "./access-probe.ts";
import { AddressRates } from "./address-rates.ts";
import { hashToken, offeredToken, originAllowed, tokenMatches } from "./auth.ts";
import { resolveRelayLimits, type RelayLimits } from "./limits.ts";
import { RelayMetrics } from "./metrics.ts";
import { silentLog, type RelayLog } from "./relay-log.ts";
import { RelaySession } from "./relay-session.ts";
import { SpaceHub } from "./space-hub.ts";
import { SpaceMemberships } from "./space-memberships.ts";
import { REMOVED_CLOSE } from "./membership-gate.ts";
import { invitationLog } from "./invitation-log.ts";
import { membershipAppeal } from "./membership-appeal.ts";
import { checkSpaceClaim, SPACE_CLAIM_REFUSALS } from "./space-claim-check.ts";
import { SpaceRates } from "./space-rates.ts";
import type { CommitVerifier } from "./store-upload.ts";
import { CappedStore } from "./store/capped-store.ts";
import type { RelayStore } from "./store/store.ts";
import { UploadBudget } from "./upload-budget.ts";

/** What `createApp` is built from. Only `store` is required. */
export interface AppDeps {
  store: RelayStore;
  /** The runtime's WebSocket upgrade helper (`createNodeWebSocket(...).upgradeWebSocket` on Node). */
  upgradeWebSocket?: UpgradeWebSocket<any>;
  limits?: Partial<RelayLimits>;
  /**
   * When set, a request whose `Origin` header is not in this list is refused with 403. Requests
   * without `Origin` (native apps, servers, tests) are allowed: only browsers send it, and they
   * always do. `"self"` stands for the relay's own origin (same host as the request), `"*"` for any.
   */
  allowedOrigins?: readonly string[];
  metrics?: RelayMetrics;
  hub?: SpaceHub;
  log?: RelayLog;
  /**
   * Extra readiness for `/healthz` beyond the store answering, e.g. the fan-out's Redis connections:
   * returns what is wrong (a short name), or `undefined` when ready.
   */
  readiness?: () => string | undefined;
  /**
   * The client's address (for the new-spaces rate per address); without it every request counts as
   * one address. The Node entry reads the socket's peer address.
   */
  clientAddress?: (c: Context) => string | undefined;
  /** Verifies uploaded commits' signatures off the relay's thread (`VerifyPool`); absent: on it. */
  verifier?: CommitVerifier;
  /**
   * The region this relay declares (`--region`): shown by `/healthz`, answered to a client that offers
   * `shoal-region.<region>`, and the only region whose pinned spaces it stores (PROTOCOL.md 1, 5).
   */
  region?: string;
  /** Runtime hook to keep sockets alive: start pinging `raw`, call `alive` on each pong, return a stop function. */
  heartbeat?: (raw: unknown, alive: () => void) => () => void;
}

/** How long `/metrics` waits for the store's totals before rendering without them. */
const METRICS_STORE_TIMEOUT_MS = 2000;

/**
 * The relay as a Hono app: `GET /healthz`, `GET /metrics`, `GET /sync/<spaceHex>` which checks the
 * space id, the Origin, the subprotocol, the token, the space limits, for an unknown space its
 * creator's claim and, for a space with members, the device's proof and membership or invitation,
 * BEFORE upgrading to a WebSocket (400, 403, 426, 401, 400, 503, 429, 403, 403, 403, 429), then runs
 * one `RelaySession` per socket; `POST /sync/<spaceHex>/access`, which answers the same access checks
 * without upgrading or registering (`accessProbe`), for browsers that cannot see the upgrade's status;
 * `POST /sync/<spaceHex>/invitation`, which gives a member or an invited device the space's
 * membership log (`invitationLog`); and `POST /sync/<spaceHex>/appeal`, where a device the relay holds
 * removed uploads its own commits that may cancel the removal (`membershipAppeal`). Runtime-neutral: the Node entry only serves it.
 *
 * @example
 * const app = createApp({ store: new MemoryStore() });
 * const res = await app.request("/healthz"); // 200 {"status":"ok",...}
 */
export function createApp(deps: AppDeps): Hono {
  const limits: RelayLimits = resolveRelayLimits(deps.limits);
  const store =
    deps.store instanceof CappedStore ? deps.store : new CappedStore(deps.store, limits.maxStoreBytes);
  const spaceRates = new SpaceRates(limits.spaceBytesPerSecond, 2 * limits.spaceBytesPerSecond);
  const uploadBudget = new UploadBudget(limits.maxUploadBufferBytes);
  const newSpaces = new AddressRates(limits.newSpacesPerHourPerAddress);
  const metrics = deps.metrics ?? new RelayMetrics();
  const hub = deps.hub ?? new SpaceHub();
  const log = deps.log ?? silentLog;
  // Kept current by this relay's sessions and by the fan-out while the space has connections here.
  const memberships = new SpaceMemberships(store, (space) => hub.count(space) > 0);
  hub.observe((space, commits) => {
    memberships
      .delivered(space, commits)
      .then((removed) => hub.closeDevices(space, removed, REMOVED_CLOSE.code, REMOVED_CLOSE.reason))
      .catch(() => log("membership.fan-out-error", { space }));
  });
  const app = new Hono();

  app.get("/healthz", async (c) => {
    // Readiness, not liveness: a load balancer should send no device to an instance that cannot store
    // or cannot hear other instances, and 503 says so.
    try {
      await store.stats();
    } catch {
      return c.json({ status: "store-unavailable" }, 503);
    }
    const problem = deps.readiness?.();
    if (problem) return c.json({ status: problem }, 503);
    return c.json({
      status: "ok",
      connections: metrics.connectionsOpen,
      ...(deps.region !== undefined && { region: deps.region }),
    });
  });

  app.get("/metrics", async (c) => {
    // A store that is down (Redis outage) or slow must not take the page with it: that is when the
    // other families matter most. Its gauges are left out and `shoal_store_up` says why.
    const totals = await withinMs(METRICS_STORE_TIMEOUT_MS, () => store.stats()).catch(() => undefined);
    const text = await metrics.render(totals);
    return c.text(text, 200, { "Content-Type": metrics.contentType });
  });

  // Browsers hide a refused upgrade's status; this tells them what it was (see access-probe.ts).
  const access = {
    store,
    metrics,
    log,
    memberships,
    allowedOrigins: deps.allowedOrigins,
    region: deps.region,
  };
  app.post("/sync/:space/access", accessProbe(access));
  // A joining device reads the log (its invitation's sealed keys) before it can sync (invitation-log.ts).
  app.post("/sync/:space/invitation", invitationLog(access));
  // A device the relay holds removed uploads what may cancel its removal (membership-appeal.ts).
  app.post("/sync/:space/appeal", membershipAppeal({ ...access, hub, limits, region: deps.region }));

  app.get("/sync/:space", async (c) => {
    const space = c.req.param("space");
    const refuse = (
      status: 400 | 401 | 403 | 426 | 429 | 501 | 503,
      text: string,
      headers: Record<string, string> = {},
    ) => {
      metrics.upgradeRefused(status);
      log("upgrade.refused", { space: isIdHex(space) ? space : undefined, status });
      return c.text(text, status, headers);
    };
    if (!isIdHex(space)) return refuse(400, "A space id is 32 lowercase hex characters.");
    if (!originAllowed(deps.allowedOrigins, c.req.header("origin"), c.req.header("host")))
      return refuse(403, "Origin not allowed.");
    if (c.req.header("upgrade")?.toLowerCase() !== "websocket") {
      return refuse(426, "This endpoint only speaks WebSocket.", { Upgrade: "websocket" });
    }
    // The token travels as a subprotocol; it must never reach a log line or an error message.
    const protocols = c.req.header("sec-websocket-protocol");
    const token = offeredToken(protocols);
    if (!token) return refuse(401, "Missing or malformed access token.");
    if (!parseOfferedSubprotocols(protocols).shoal)
      return refuse(400, `Offer the ${SUBPROTOCOL} subprotocol.`);
    // A space pinned to another region (PROTOCOL.md 1, "Residency"): refused before it is registered.
    const pinned = parseOfferedSubprotocols(protocols).region;
    if (pinned !== undefined && pinned !== deps.region) {
      metrics.refused("residency");
      return refuse(403, RESIDENCY_REFUSAL);
    }
    // A first connection registers its space: strangers may do that only within the relay's limits,
    // and only with a claim signed by the key the space id derives from (PROTOCOL.md 1, "Space
    // claims"). The limits come first: they cost nothing, a signature check does.
    let creator: Uint8Array | undefined;
    if ((await store.tokenHash(space)) === undefined) {
      if ((await store.totals()).spaces >= limits.maxSpaces) {
        metrics.refused("spaces");
        return refuse(503, "This relay holds as many spaces as it may.", { "Retry-After": "3600" });
      }
      if (!newSpaces.take(deps.clientAddress?.(c) ?? "unknown")) {
        metrics.refused("new-spaces-rate");
        return refuse(429, "Too many new spaces from this address.", { "Retry-After": "60" });
      }
      const checked = checkSpaceClaim(space, token, parseOfferedSubprotocols(protocols).claim);
      if ("fault" in checked) {
        metrics.refused(`claim-${checked.fault}`);
        return refuse(403, SPACE_CLAIM_REFUSALS[checked.fault]);
      }
      creator = checked.creator;
    }
    // For a known space the claim is not looked at: the token decides, as it always did.
    const stored = await store.registerSpace(space, hashToken(token), creator);
    if (!tokenMatches(token, stored)) return refuse(403, "Wrong access token for this space.");
    // A space with members lets in only its members' devices and holders of a usable invitation.
    const offered = parseOfferedSubprotocols(protocols);
    const admitted = await memberships.admit(space, offered.device, offered.invitation, Date.now());
    if (admitted && "fault" in admitted) {
      metrics.refused(admitted.fault);
      return refuse(403, MEMBERSHIP_REFUSALS[admitted.fault]);
    }
    if (hub.count(space) >= limits.maxConnectionsPerSpace)
      return refuse(429, "Too many connections to this space.");
    if (!deps.upgradeWebSocket) return refuse(501, "WebSockets are not available in this runtime.");
    // With several instances, hear the space's commits from the others before the device is welcomed:
    // a commit stored elsewhere after the welcome must reach this socket as a live push.
    try {
      await hub.ready(space);
    } catch {
      return refuse(503, "The relay cannot reach its fan-out right now.");
    }
    return deps.upgradeWebSocket(c, socketEvents(space, admitted?.device));
  });

  function socketEvents(space: string, device: string | undefined): WSEvents<unknown> {
    let session: RelaySession | undefined;
    let stopHeartbeat: (() => void) | undefined;
    let resumeTimer: ReturnType<typeof setTimeout> | undefined;
    // Stops reading the socket (ws and similar expose pause/resume) until the byte budgets refilled.
    // The newest debt includes the older, so the newest delay replaces the pending one.
    const pauseRaw = (raw: unknown, ms: number) => {
      const socket = raw as { pause?: () => void; resume?: () => void } | undefined;
      if (!socket?.pause || !socket.resume) return;
      socket.pause();
      clearTimeout(resumeTimer);
      resumeTimer = setTimeout(() => socket.resume!(), ms);
      (resumeTimer as { unref?: () => void }).unref?.();
    };
    return {
      onOpen(_event, ws: WSContext<unknown>) {
        session = new RelaySession({
          space,
          store,
          hub,
          metrics,
          limits,
          log,
          spaceRates,
          uploadBudget,
          memberships,
          device,
          verifier: deps.verifier,
          region: deps.region,
          socket: {
            send: (bytes) => ws.send(bytes as Uint8Array<ArrayBuffer>),
            close: (code, reason) => ws.close(code, reason),
            bufferedAmount: () => (ws.raw as { bufferedAmount?: number } | undefined)?.bufferedAmount ?? 0,
            pauseReading: (ms) => pauseRaw(ws.raw, ms),
          },
        });
        stopHeartbeat = deps.heartbeat?.(ws.raw, () => session?.touch());
      },
      onMessage(event) {
        // @hono/node-ws hands binary frames over as ArrayBuffer and text frames as string.
        const data = event.data;
        if (typeof data === "string" || data instanceof ArrayBuffer) session?.receive(data);
        else session?.receive(new Uint8Array(data as unknown as ArrayBuffer));
      },
      onClose() {
        clearTimeout(resumeTimer);
        stopHeartbeat?.();
        session?.closed();
      },
      onError(event) {
        // `ws` closes the socket itself after these (1009 for an over-limit frame, 1002 otherwise).
        const code = (event as Event & { error?: { code?: string } }).error?.code;
        const reason = code === "WS_ERR_UNSUPPORTED_MESSAGE_LENGTH" ? "oversized" : "websocket";
        metrics.frameRejected(reason);
        metrics.closedBy(reason);
        log("session.socket-error", { space, reason });
      },
    };
  }

  app.onError((err, c) => {
    log("http.error", { error: err.name });
    return c.text("Internal error", 500);
  });

  return app;
}

/** `run()`'s result, or a rejection once `ms` have passed (a throw inside `run` rejects too). */
async function withinMs<T>(ms: number, run: () => Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([(async () => run())(), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
