import {
  CLOSE_CODES,
  DEVICE_SUBPROTOCOL_PREFIX,
  INVITATION_SUBPROTOCOL_PREFIX,
  REGION_SUBPROTOCOL_PREFIX,
  encodeBase64Url,
  offeredSubprotocols,
} from "../protocol/index.ts";
import type { Transport, TransportConnection, TransportHandlers } from "./transport.ts";
import type { SpaceId } from "../types.ts";

/**
 * What this adapter uses of a WebSocket: the browser's global and the `ws` package's class both fit.
 * Event handler parameters are `never` so that either implementation's own event types are accepted
 * (function parameters are checked contravariantly); the handlers below state what they read.
 */
export interface WebSocketLike {
  binaryType: string;
  readonly bufferedAmount: number;
  /** 0 connecting, 1 open, 2 closing, 3 closed (the WHATWG values, which `ws` shares). */
  readonly readyState: number;
  /** The subprotocol the server selected (WHATWG and `ws` alike). */
  readonly protocol?: string;
  onopen: ((event: never) => void) | null;
  onmessage: ((event: never) => void) | null;
  onclose: ((event: never) => void) | null;
  onerror: ((event: never) => void) | null;
  send(data: Uint8Array): void;
  close(code?: number, reason?: string): void;
}

/** A WebSocket class: `globalThis.WebSocket` in browsers, `WebSocket` from `ws` on Node 20. */
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

/** Options of `webSocketTransport`. */
export interface WebSocketTransportOptions {
  /**
   * The relay's base URL: `ws://` or `wss://`, or `http://` / `https://` (turned into `ws://` / `wss://`),
   * optionally with a path prefix (`https://example.org/shoal`) and with or without a trailing `/sync`.
   * In a browser a relative URL (`"/"`) resolves against the page. No query, fragment or credentials:
   * the access token travels in `Sec-WebSocket-Protocol`, never in the URL.
   *
   * Several URLs (instances of one relay sharing a store, docs/SCALING.md) are tried in turn: each
   * `connect` uses the current one, and a connection that failed moves the transport to the next,
   * so the engine's backoff paces a round-robin over them. Failover loses and duplicates nothing:
   * every connection starts with `hello`/`welcome` vectors, so the device uploads exactly what the
   * store lacks and pulls exactly what it lacks, whichever instance answers.
   */
  url: string | readonly string[];
  /** Default `globalThis.WebSocket`; on Node 20 pass `WebSocket` from the `ws` package. */
  WebSocket?: WebSocketConstructor;
}

// RFC 6455 7.1.5: "closed abnormally", what browsers report for any failure before or without a close frame.
const ABNORMAL = 1006;
// WHATWG WebSocket readyState OPEN.
const OPEN = 1;
// RFC 6455 5.5: a close frame's reason fits in 123 bytes, and `close()` throws a SyntaxError beyond that.
const MAX_REASON_BYTES = 123;
// A relay's refusal text is one sentence; anything longer is cut (a proxy's HTML error page, say).
const MAX_REFUSAL_TEXT_BYTES = 512;
// How long a refused upgrade's body may take to arrive before the refusal is reported without it.
const REFUSAL_TEXT_TIMEOUT_MS = 2000;
// How long an access probe may take before the failure is reported as it was (1006): long enough for
// a slow relay, short enough that a device behind a black-holed network does not wait for long.
const PROBE_TIMEOUT_MS = 5000;
// An appeal uploads up to a frame of commits, which the relay verifies and stores durably first.
const APPEAL_TIMEOUT_MS = 15_000;

/**
 * The transport to a Shoal relay over WebSocket (PROTOCOL.md): opens `<base>/sync/<spaceIdHex>`
 * offering `shoal.1` and the token as subprotocols, and exchanges binary frames.
 *
 * - A refused upgrade (HTTP 4xx) ends in `onClose` with code 4000 + status (4401: no or malformed
 *   token, 4403: wrong token, or an unknown space without a valid claim) and the reason
 *   `HTTP <status>: <the relay's text>` (its first 512 bytes, when it could be read within 2 s; for a
 *   401 or 403 without a body, the access probe's text). `ws` reports the status through its
 *   `unexpected-response` event.
 *   Browsers hide it (close 1006 for any failure before the open), so where the WebSocket class has no
 *   `on` method a 1006 before the open is followed by one `fetch` to the relay's access probe
 *   (`POST <base>/sync/<space>/access`, PROTOCOL.md 1): 401 or 403 there turn the close into 4401 or
 *   4403; anything else (204, no answer within 5 s, an unreachable relay, no global `fetch`) leaves
 *   the 1006 and its reason as they were.
 * - A text frame is a protocol violation (the relay sends only binary): the connection is closed
 *   with 1003 and `onClose` reports it.
 * - `onClose` comes exactly once per `connect`, never synchronously inside `connect` or `close`;
 *   after `close()` it reports code 1000 at once, without waiting for the server's close frame.
 *
 * - With several URLs, `label` names the one the next `connect` uses (see `url`).
 * - `appeal` posts a removed device's own commits to the relay's appeal endpoint (PROTOCOL.md 1,
 *   "Appeal"), which the session calls when its own membership log disagrees with the refusal.
 *
 * @example
 * import { WebSocket } from "ws"; // Node 20 only; browsers omit the option
 * const transport = webSocketTransport({ url: "https://relay.example.org", WebSocket });
 * const failover = webSocketTransport({ url: ["wss://a.example.org", "wss://b.example.org"] });
 * transport.connect(spaceId, token, { onOpen, onMessage, onClose });
 */
export function webSocketTransport(options: WebSocketTransportOptions): Transport {
  const bases = (typeof options.url === "string" ? [options.url] : [...options.url]).map(relayBase);
  if (bases.length === 0) throw new TypeError("Give at least one relay URL.");
  const Socket = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
  if (!Socket)
    throw new TypeError("No global WebSocket here: pass one, e.g. `WebSocket` from the ws package.");
  // Shared by every space's connections: when an instance dies, the first space to notice moves all of
  // them on, and the others (whose attempt used the URL already left) do not move them twice.
  let current = 0;
  return {
    kind: "relay",
    get label(): string {
      return bases[current]!;
    },
    connect: (
      space: SpaceId,
      token: Uint8Array,
      handlers: TransportHandlers,
      claim?: Uint8Array,
      proofs: readonly string[] = [],
    ): TransportConnection => {
      const used = current;
      let opened = false;
      return openConnection(
        Socket,
        `${bases[used]}/sync/${encodeURIComponent(space)}`,
        token,
        claim,
        proofs,
        {
          onOpen: (info) => {
            opened = true;
            handlers.onOpen(info);
          },
          onMessage: handlers.onMessage,
          onClose: (reason, code) => {
            // A failure is anything but a normal close of an opened connection (the client's own close,
            // an idle timeout): the next attempt goes to the next instance.
            const failed = !opened || code !== CLOSE_CODES.normal;
            if (failed && current === used) current = (used + 1) % bases.length;
            handlers.onClose(reason, code);
          },
        },
      );
    },
    appeal: (space, token, proofs, commits) =>
      appealRemoval(
        `${bases[current]!.replace(/^ws/, "http")}/sync/${encodeURIComponent(space)}`,
        token,
        proofs,
        commits,
      ),
  };
}

function openConnection(
  Socket: WebSocketConstructor,
  url: string,
  token: Uint8Array,
  claim: Uint8Array | undefined,
  proofs: readonly string[],
  handlers: TransportHandlers,
): TransportConnection {
  let socket: WebSocketLike | undefined;
  // "probing": the socket failed before opening and the access probe has not answered yet.
  let state: "connecting" | "probing" | "open" | "closed" = "connecting";

  const finish = (reason: string, code?: number): void => {
    if (state === "closed") return;
    state = "closed";
    if (socket) socket.onopen = socket.onmessage = socket.onclose = null;
    handlers.onClose(reason, code);
  };
  // For failures found before a socket exists: `onClose` must not run inside `connect`.
  const finishSoon = (reason: string, code?: number): void => queueMicrotask(() => finish(reason, code));
  const closeSocket = (code: number, reason: string): void => {
    try {
      socket?.close(code, truncateUtf8(reason, MAX_REASON_BYTES));
    } catch {
      // Already closing or closed: nothing left to release.
    }
  };

  let protocols: string[];
  try {
    protocols = offeredSubprotocols(token, claim, proofs);
  } catch {
    // The relay would answer 401 to a malformed token; say so without a round trip.
    finishSoon("Missing or malformed access token.", 4401);
    return connection();
  }
  try {
    socket = new Socket(url, protocols);
  } catch (e) {
    finishSoon(e instanceof Error ? e.message : "WebSocket constructor failed", ABNORMAL);
    return connection();
  }

  socket.binaryType = "arraybuffer";
  // `ws` throws an 'error' event that has no listener, so one is always attached; the close event
  // that follows every error carries what the engine needs.
  socket.onerror = () => {};
  socket.onopen = () => {
    if (state !== "connecting") return;
    state = "open";
    handlers.onOpen({ protocol: socket!.protocol ?? "" });
  };
  socket.onmessage = (event: { data: unknown }) => {
    if (state !== "open") return;
    const data = event.data;
    if (data instanceof ArrayBuffer) handlers.onMessage(new Uint8Array(data));
    else if (ArrayBuffer.isView(data))
      handlers.onMessage(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    else {
      closeSocket(CLOSE_CODES.unsupportedData, "text frame");
      finish("The relay sent a text frame; only binary frames are allowed.", CLOSE_CODES.unsupportedData);
    }
  };
  const emitter = socket as Partial<NodeStyleSocket>;
  const reportsStatus = typeof emitter.on === "function";
  socket.onclose = (event: { code: number; reason: string }) => {
    if (state !== "connecting" || event.code !== ABNORMAL || reportsStatus) {
      finish(event.reason, event.code);
      return;
    }
    // A browser: a refused upgrade and an unreachable relay both arrive here as 1006, so ask the
    // relay which it was. A `close()` meanwhile reports 1000 and makes `finish` ignore the answer.
    state = "probing";
    void probeAccess(url, token, claim, proofs).then((answer) =>
      answer === undefined
        ? finish(event.reason, event.code)
        : finish(refusalReason(answer.status, answer.text), 4000 + answer.status),
    );
  };
  if (typeof emitter.on === "function") {
    // ws only: the HTTP status of a refused upgrade, which browsers deliberately hide (WHATWG
    // websockets "fail the WebSocket connection"). Without this listener ws reports a generic error.
    emitter.on("unexpected-response", (_request, response) => {
      const status = response.statusCode ?? 0;
      // The relay says why in the body (a wrong token, a missing claim): read a little of it first.
      // Some servers drop the body of a refused upgrade (@hono/node-ws writes the status line only),
      // so for 401 and 403 without a text the access probe is asked, which answers with the same text.
      void readRefusalText(response)
        .then(async (text) => {
          if (text.trim() || (status !== 401 && status !== 403)) return text;
          const answer = await probeAccess(url, token, claim, proofs);
          return answer?.status === status ? answer.text : "";
        })
        .then((text) => {
          finish(refusalReason(status, text), status >= 400 && status < 500 ? 4000 + status : ABNORMAL);
          emitter.terminate?.();
        });
    });
  }
  return connection();

  function connection(): TransportConnection {
    return {
      send(frame: Uint8Array): void {
        // The socket may be closing before its close event arrives (the relay went away): a browser
        // then drops the frame and logs a console error per send, so frames stop here instead. What
        // was not sent is sent again by the next connection, which starts from the vectors.
        if (state !== "open" || socket!.readyState !== OPEN) return;
        try {
          socket!.send(frame);
        } catch {
          // A socket closing under us may throw (InvalidStateError); its close event reports it.
        }
      },
      get bufferedAmount(): number {
        return socket?.bufferedAmount ?? 0;
      },
      close(reason = "closed by client"): void {
        if (state === "closed") return;
        closeSocket(CLOSE_CODES.normal, reason);
        state = "closed";
        if (socket) socket.onopen = socket.onmessage = socket.onclose = null;
        queueMicrotask(() => handlers.onClose(reason, CLOSE_CODES.normal));
      },
    };
  }
}

/**
 * What the relay's access probe (PROTOCOL.md 1, "Access probe") says about `token` for the space of
 * `socketUrl` (`ws(s)://…/sync/<space>`), offering `claim` too when there is one: 401 or 403 when the
 * upgrade's access checks refuse it, and
 * `undefined` when it would pass or nothing could be learned (no `fetch`, relay unreachable or slow,
 * an answer the page may not read).
 */
async function probeAccess(
  socketUrl: string,
  token: Uint8Array,
  claim: Uint8Array | undefined,
  proofs: readonly string[],
): Promise<{ status: 401 | 403; text: string } | undefined> {
  if (typeof globalThis.fetch !== "function") return undefined;
  try {
    // A pinned space's region rides in the query: a relay of another region refuses it here as at the
    // upgrade (older relays ignore the query).
    const region = proofs.find((p) => p.startsWith(REGION_SUBPROTOCOL_PREFIX));
    const query = region
      ? `?region=${encodeURIComponent(region.slice(REGION_SUBPROTOCOL_PREFIX.length))}`
      : "";
    const res = await globalThis.fetch(`${socketUrl.replace(/^ws/, "http")}/access${query}`, {
      method: "POST",
      // A string body goes as text/plain and no header is added: a CORS "simple request", so a relay
      // on another origin is asked without a preflight round trip.
      // `<token>.<claim>` with a claim, so an unregistered space is refused here exactly as at the upgrade.
      // Then the device and invitation proofs (the base64url of their items), so a space with members
      // refuses a removed device or a spent invitation here as at the upgrade.
      body: [
        encodeBase64Url(token),
        claim ? encodeBase64Url(claim) : "",
        proofItem(proofs, DEVICE_SUBPROTOCOL_PREFIX),
        proofItem(proofs, INVITATION_SUBPROTOCOL_PREFIX),
      ]
        .join(".")
        .replace(/\.+$/, ""),
      credentials: "omit",
      cache: "no-store",
      signal: AbortSignal.timeout(PROBE_TIMEOUT_MS),
    });
    if (res.status !== 401 && res.status !== 403) {
      res.body?.cancel().catch(() => {});
      return undefined;
    }
    const text = await res.text().catch(() => "");
    return { status: res.status, text: text.slice(0, MAX_REFUSAL_TEXT_BYTES) };
  } catch {
    // Unreachable, timed out, or an Origin the relay does not allow: the failure stays a 1006.
    return undefined;
  }
}

/**
 * Asks the relay's appeal endpoint (`POST <base>/sync/<space>/appeal`, PROTOCOL.md 1) to take this
 * device's own `commits` and let it in again: true when it answers 200 (`admitted`), false for any
 * other answer, no answer within `APPEAL_TIMEOUT_MS`, or an unreachable relay.
 */
async function appealRemoval(
  spaceUrl: string,
  token: Uint8Array,
  proofs: readonly string[],
  commits: readonly Uint8Array[],
): Promise<boolean> {
  if (typeof globalThis.fetch !== "function") return false;
  try {
    const res = await globalThis.fetch(`${spaceUrl}/appeal`, {
      method: "POST",
      // Text, like the access probe's body: a CORS simple request, no preflight.
      body: [
        encodeBase64Url(token),
        proofItem(proofs, DEVICE_SUBPROTOCOL_PREFIX),
        ...commits.map(encodeBase64Url),
      ].join("."),
      credentials: "omit",
      cache: "no-store",
      signal: AbortSignal.timeout(APPEAL_TIMEOUT_MS),
    });
    const answer = (await res.json().catch(() => undefined)) as { admitted?: unknown } | undefined;
    return res.status === 200 && answer?.admitted === true;
  } catch {
    return false;
  }
}

/** The base64url of the first proof item with `prefix`, or "" when there is none. */
function proofItem(proofs: readonly string[], prefix: string): string {
  return proofs.find((p) => p.startsWith(prefix))?.slice(prefix.length) ?? "";
}

/** The parts of Node's `IncomingMessage` read from a refused upgrade's answer. */
interface RefusalResponse {
  statusCode?: number;
  resume?(): void;
  on?(event: "data" | "end" | "error", listener: (chunk?: unknown) => void): unknown;
}

/** The parts of `ws`'s WebSocket (an EventEmitter) used for refused upgrades. */
interface NodeStyleSocket {
  on(event: "unexpected-response", listener: (request: unknown, response: RefusalResponse) => void): unknown;
  terminate(): void;
}

/** `HTTP <status>`, followed by `: <text>` when the relay said why. */
function refusalReason(status: number, text: string): string {
  const why = text.trim();
  return why ? `HTTP ${status}: ${why}` : `HTTP ${status}`;
}

/**
 * The start of a refused upgrade's body as text: at most `MAX_REFUSAL_TEXT_BYTES`, and whatever
 * arrived within `REFUSAL_TEXT_TIMEOUT_MS` (a relay's refusal is one short line; a proxy's error page
 * is cut). Never rejects.
 */
function readRefusalText(response: RefusalResponse): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Uint8Array[] = [];
    let size = 0;
    let done = false;
    const end = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      const bytes = new Uint8Array(size);
      let at = 0;
      for (const c of chunks) {
        bytes.set(c, at);
        at += c.length;
      }
      resolve(new TextDecoder("utf-8", { fatal: false }).decode(bytes.slice(0, MAX_REFUSAL_TEXT_BYTES)));
    };
    const timer = setTimeout(end, REFUSAL_TEXT_TIMEOUT_MS);
    if (typeof response.on !== "function") return end();
    response.on("data", (chunk) => {
      if (chunk instanceof Uint8Array && size < MAX_REFUSAL_TEXT_BYTES) {
        chunks.push(chunk);
        size += chunk.length;
      }
    });
    response.on("end", end);
    response.on("error", end);
    response.resume?.();
  });
}

/** `<scheme>//<host><prefix>` from any accepted form of the relay URL (see `WebSocketTransportOptions.url`). */
function relayBase(url: string): string {
  const page = (globalThis as { location?: { href: string } }).location?.href;
  let u: URL;
  try {
    u = new URL(url, page);
  } catch {
    throw new TypeError(`Not a relay URL: ${url}`);
  }
  const scheme = { "ws:": "ws:", "wss:": "wss:", "http:": "ws:", "https:": "wss:" }[u.protocol];
  if (!scheme) throw new TypeError(`A relay URL is ws(s):// or http(s)://, not ${u.protocol}`);
  if (u.search || u.hash || u.username || u.password) {
    throw new TypeError(
      "A relay URL takes no query, fragment or credentials (the token travels in a header).",
    );
  }
  const prefix = u.pathname.replace(/\/+$/, "").replace(/\/sync$/, "");
  return `${scheme}//${u.host}${prefix}`;
}

function truncateUtf8(text: string, maxBytes: number): string {
  const bytes = new TextEncoder().encode(text);
  if (bytes.length <= maxBytes) return text;
  // `fatal: false` drops a code point cut in half instead of throwing.
  return new TextDecoder("utf-8", { fatal: false }).decode(bytes.slice(0, maxBytes)).replace(/\uFFFD$/, "");
}
