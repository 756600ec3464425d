import "./error-event-polyfill.ts";
import { serve, type ServerType } from "@hono/node-server";
import { createNodeWebSocket } from "@hono/node-ws";
import { Hono } from "hono";
import type { IncomingMessage, Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { WebSocket } from "ws";
import { CLOSE_CODES, REGION_SUBPROTOCOL_PREFIX, SUBPROTOCOL } from "@shoal/client/protocol";
import { createApp } from "./app.ts";
import { SELF_ORIGIN } from "./auth.ts";
import { guardConnections } from "./connection-gate.ts";
import { resolveRelayLimits, type RelayLimits } from "./limits.ts";
import { RelayMetrics } from "./metrics.ts";
import { silentLog, type RelayLog } from "./relay-log.ts";
import { SpaceHub } from "./space-hub.ts";
import { serveStaticApp } from "./static-files.ts";
import type { RelayStore } from "./store/store.ts";
import { VerifyPool } from "./verify-pool.ts";

/** Options of `startRelay`. */
export interface RelayServerOptions {
  store: RelayStore;
  /** 0 picks a free port. Default 8787. */
  port?: number;
  /** Default 127.0.0.1: a relay is exposed on purpose (behind a TLS proxy), never by accident. */
  host?: string;
  limits?: Partial<RelayLimits>;
  /**
   * The browser Origins allowed (see `AppDeps.allowedOrigins`). Default: any, except with `staticDir`,
   * where it is `["self"]`: only the served app's own origin.
   */
  allowedOrigins?: readonly string[];
  /** A built web app to serve at `/` (SPA fallback to index.html), with strict security headers. */
  staticDir?: string;
  log?: RelayLog;
  /** Counters behind `/metrics`; pass one to share it with the store and the fan-out (Redis errors). */
  metrics?: RelayMetrics;
  /** The live fan-out; pass one built with a `HubLink` (`RedisFanOut`) to run several instances. */
  hub?: SpaceHub;
  /** Extra readiness for `/healthz` (see `AppDeps.readiness`). */
  readiness?: () => string | undefined;
  /**
   * Worker threads that verify uploaded commits' signatures (`VerifyPool`), off the relay's thread.
   * Default 0: the relay's thread verifies them.
   */
  verifyThreads?: number;
  /** The region this relay declares (`--region`, see `AppDeps.region`). */
  region?: string;
}

/** A listening relay. */
export interface RunningRelay {
  /** `http://host:port`; the sync endpoint is `ws://host:port/sync/<spaceHex>`. */
  url: string;
  port: number;
  host: string;
  metrics: RelayMetrics;
  /** Graceful stop: closes sockets with 1001, waits briefly for them, stops listening, closes the store. */
  close(): Promise<void>;
}

// How long shutdown waits for clients to answer the close handshake before cutting them off.
const CLOSE_GRACE_MS = 2000;

/**
 * Serves `createApp` on Node with @hono/node-server and @hono/node-ws, with an explicit frame limit,
 * no permessage-deflate, `shoal.1` as the only subprotocol answered, and WebSocket pings for liveness.
 *
 * @example
 * const relay = await startRelay({ store: new SqliteStore("./relay-data/relay.sqlite"), port: 0 });
 * console.log(relay.url);
 */
export async function startRelay(options: RelayServerOptions): Promise<RunningRelay> {
  const limits: RelayLimits = resolveRelayLimits(options.limits);
  const metrics = options.metrics ?? new RelayMetrics();
  const hub = options.hub ?? new SpaceHub();
  const log = options.log ?? silentLog;
  // A failed pool leaves verification to this thread, as without one: said once, in the log.
  const verifier = options.verifyThreads
    ? new VerifyPool(options.verifyThreads, {
        onFailure: (e) => log("verify-pool.failed", { error: e instanceof Error ? e.name : "unknown" }),
      })
    : undefined;
  const root = new Hono();
  const nodeWs = createNodeWebSocket({ app: root });
  // @hono/node-ws builds its WebSocketServer with ws defaults (100 MiB messages) and offers no option,
  // so adjust the options object ws reads at each upgrade. Frames up to twice the limit still reach the
  // session, which answers with an `error` frame; anything larger is cut off by ws with close 1009.
  Object.assign(nodeWs.wss.options, {
    maxPayload: limits.maxFrameBytes * 2,
    perMessageDeflate: false,
    handleProtocols: (protocols: Set<string>) => {
      if (!protocols.has(SUBPROTOCOL)) return false;
      // A client syncing a space pinned to this relay's region learns that it is (PROTOCOL.md 1).
      const region = options.region === undefined ? undefined : REGION_SUBPROTOCOL_PREFIX + options.region;
      return region !== undefined && protocols.has(region) ? region : SUBPROTOCOL;
    },
  });
  const app = createApp({
    store: options.store,
    upgradeWebSocket: nodeWs.upgradeWebSocket,
    limits,
    allowedOrigins: options.allowedOrigins ?? (options.staticDir ? [SELF_ORIGIN] : undefined),
    metrics,
    hub,
    log,
    readiness: options.readiness,
    verifier,
    ...(options.region !== undefined && { region: options.region }),
    clientAddress: (c) =>
      (c.env as { incoming?: IncomingMessage } | undefined)?.incoming?.socket?.remoteAddress,
    heartbeat: (raw, alive) => pingEvery(raw as WebSocket, limits.idleTimeoutMs / 3, alive),
  });
  root.route("/", app);
  if (options.staticDir) serveStaticApp(root, options.staticDir);

  const host = options.host ?? "127.0.0.1";
  const server = await new Promise<ServerType>((resolve, reject) => {
    const s = serve(
      {
        fetch: root.fetch,
        port: options.port ?? 8787,
        hostname: host,
        serverOptions: {
          headersTimeout: limits.headersTimeoutMs,
          requestTimeout: limits.requestTimeoutMs,
          // Node checks the two timeouts above only this often (default 30 s, which let a slow-header
          // connection live 85 s with the old defaults).
          connectionsCheckingInterval: Math.min(1000, limits.headersTimeoutMs),
        },
      },
      () => resolve(s),
    );
    s.once("error", reject);
  });
  guardConnections(server as Server, limits, metrics);
  nodeWs.injectWebSocket(server);
  const port = (server.address() as AddressInfo).port;
  let closing: Promise<void> | undefined;

  return {
    url: `http://${host.includes(":") ? `[${host}]` : host}:${port}`,
    port,
    host,
    metrics,
    close: () =>
      (closing ??= (async () => {
        hub.closeAll(CLOSE_CODES.goingAway, "relay shutting down");
        for (const ws of nodeWs.wss.clients)
          if (ws.readyState === ws.OPEN) ws.close(CLOSE_CODES.goingAway, "relay shutting down");
        await waitUntil(() => nodeWs.wss.clients.size === 0, CLOSE_GRACE_MS);
        for (const ws of nodeWs.wss.clients) ws.terminate();
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          (server as { closeAllConnections?: () => void }).closeAllConnections?.();
        });
        await verifier?.close();
        await options.store.close();
      })()),
  };
}

/** WebSocket-level pings: browsers answer them automatically, so an idle but healthy tab stays open. */
function pingEvery(ws: WebSocket, intervalMs: number, alive: () => void): () => void {
  const onPong = () => alive();
  ws.on("pong", onPong);
  const timer = setInterval(() => {
    if (ws.readyState === ws.OPEN) ws.ping();
  }, intervalMs);
  timer.unref();
  return () => {
    clearInterval(timer);
    ws.off("pong", onPong);
  };
}

async function waitUntil(done: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
}
