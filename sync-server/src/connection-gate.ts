import type { Server } from "node:http";
import type { Socket } from "node:net";
import type { RelayMetrics } from "./metrics.ts";

/** What `guardConnections` bounds. */
export interface ConnectionCaps {
  maxConnections: number;
  maxConnectionsPerAddress: number;
}

/**
 * Bounds the TCP connections of a Node HTTP server, counted when they open, before any byte of a
 * request is read: in total (`maxConnections`, a bare 503 and a close) and per peer address
 * (`maxConnectionsPerAddress`, a bare 429 and a close). HTTP requests, WebSockets and connections still
 * sending their headers all count, so slow-header connections cannot pile up either. Also answers
 * request timeouts (`headersTimeout`, `requestTimeout`) with 408, counting them.
 *
 * @example
 * guardConnections(server, limits, metrics);
 */
export function guardConnections(server: Server, caps: ConnectionCaps, metrics: RelayMetrics): void {
  const perAddress = new Map<string, number>();
  let open = 0;
  server.on("connection", (socket: Socket) => {
    const address = socket.remoteAddress ?? "unknown";
    const fromAddress = perAddress.get(address) ?? 0;
    if (open >= caps.maxConnections) return turnAway(socket, 503, "connections", metrics);
    if (fromAddress >= caps.maxConnectionsPerAddress) {
      return turnAway(socket, 429, "connections-per-address", metrics);
    }
    open += 1;
    perAddress.set(address, fromAddress + 1);
    socket.once("close", () => {
      open -= 1;
      const n = (perAddress.get(address) ?? 1) - 1;
      if (n <= 0) perAddress.delete(address);
      else perAddress.set(address, n);
    });
  });
  // Replaces Node's default answer to a bad or late request, which is the same but uncounted.
  server.on("clientError", (err: NodeJS.ErrnoException, socket: Socket) => {
    const timeout = err.code === "ERR_HTTP_REQUEST_TIMEOUT";
    if (timeout) metrics.refused("request-timeout");
    if (socket.writable && err.code !== "ECONNRESET") {
      socket.end(timeout ? bareResponse(408, "Request Timeout") : bareResponse(400, "Bad Request"));
    }
    socket.destroySoon();
  });
}

function turnAway(socket: Socket, status: 503 | 429, reason: string, metrics: RelayMetrics): void {
  metrics.refused(reason);
  socket.on("error", () => {});
  socket.end(bareResponse(status, status === 503 ? "Service Unavailable" : "Too Many Requests"));
  // Whatever the client sends next is not read: the socket goes once the answer is out.
  socket.destroySoon();
}

function bareResponse(status: number, text: string): string {
  return `HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`;
}
