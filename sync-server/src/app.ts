import { Hono } from "hono";
import type { UpgradeWebSocket, WSContext, WSEvents } from "hono/ws";
import { isIdHex, parseOfferedSubprotocols, SUBPROTOCOL } from "@shoal/client/protocol";
import { accessProbe } from "./access-probe.ts";
import { hashToken, originAllowed, tokenMatches } from "./auth.ts";
import { resolveRelayLimits, type RelayLimits } from "./limits.ts";
import { RelayMetrics } from "./metrics.ts";
import { silentLog, type RelayLog } from "./relay-log.ts";
import { RelaySession } from "./relay-session.ts";
import { SpaceHub } from "./space-hub.ts";
import type { RelayStore } from "./store/store.ts";

/** What `createApp` is built from. Only `store` is required. */
export interface AppDeps {
  store: RelayStore;
  /** The runtime's WebSocket upgrade helper (`createNodeWebSocket(...).upgradeWebSocket` on Node). */
  upgradeWebSocket?: UpgradeWebSocket<any>;
  limits?: Partial<RelayLimits>;
  /**
   * When set, a request whose `Origin` header is not in this list is refused with 403. Requests
   * without `Origin` (native apps, servers, tests) are allowed: only browsers send it, and they
   * always do.
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
  /** Runtime hook to keep sockets alive: start pinging `raw`, call `alive` on each pong, return a stop function. */
  heartbeat?: (raw: unknown, alive: () => void) => () => void;
}

/**
 * The relay as a Hono app: `GET /healthz`, `GET /metrics`, `GET /sync/<spaceHex>` which checks the
 * space id, the Origin, the subprotocol and the token BEFORE upgrading to a WebSocket (400, 403, 426,
 * 401, 403, 429), then runs one `RelaySession` per socket, and `POST /sync/<spaceHex>/access`, which
 * answers the same access checks without upgrading or registering (`accessProbe`), for browsers that
 * cannot see the upgrade's status. Runtime-neutral: the Node entry only serves it.
 *
 * @example
 * const app = createApp({ store: new MemoryStore() });
 * const res = await app.request("/healthz"); // 200 {"status":"ok",...}
 */
export function createApp(deps: AppDeps): Hono {
  const store = deps.store;
  const limits: RelayLimits = resolveRelayLimits(deps.limits);
  const metrics = deps.metrics ?? new RelayMetrics();
  const hub = deps.hub ?? new SpaceHub();
  const log = deps.log ?? silentLog;
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
    return c.json({ status: "ok", connections: metrics.connectionsOpen });
  });

  app.get("/metrics", async (c) => {
    const text = metrics.render(await store.stats());
    return c.text(text, 200, { "Content-Type": "text/plain; version=0.0.4; charset=utf-8" });
  });

  // Browsers hide a refused upgrade's status; this tells them what it was (see access-probe.ts).
  app.post("/sync/:space/access", accessProbe({ store, metrics, log, allowedOrigins: deps.allowedOrigins }));

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
    if (!originAllowed(deps.allowedOrigins, c.req.header("origin")))
      return refuse(403, "Origin not allowed.");
    if (c.req.header("upgrade")?.toLowerCase() !== "websocket") {
      return refuse(426, "This endpoint only speaks WebSocket.", { Upgrade: "websocket" });
    }
    // The token travels as a subprotocol; it must never reach a log line or an error message.
    const offered = parseOfferedSubprotocols(c.req.header("sec-websocket-protocol"));
    if (!offered.token) return refuse(401, "Missing or malformed access token.");
    if (!offered.shoal) return refuse(400, `Offer the ${SUBPROTOCOL} subprotocol.`);
    const stored = await store.registerSpace(space, hashToken(offered.token));
    if (!tokenMatches(offered.token, stored)) return refuse(403, "Wrong access token for this space.");
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
    return deps.upgradeWebSocket(c, socketEvents(space));
  });

  function socketEvents(space: string): WSEvents<unknown> {
    let session: RelaySession | undefined;
    let stopHeartbeat: (() => void) | undefined;
    return {
      onOpen(_event, ws: WSContext<unknown>) {
        session = new RelaySession({
          space,
          store,
          hub,
          metrics,
          limits,
          log,
          socket: {
            send: (bytes) => ws.send(bytes as Uint8Array<ArrayBuffer>),
            close: (code, reason) => ws.close(code, reason),
            bufferedAmount: () => (ws.raw as { bufferedAmount?: number } | undefined)?.bufferedAmount ?? 0,
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
