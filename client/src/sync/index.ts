/**
 * @shoal/client/sync: syncing through a relay or any other transport. `db.sync(options)` loads the sync
 * engine on its first call, so a local-only app never downloads it; this entry names what an app that
 * syncs may configure: the WebSocket transport (several relay URLs, a WebSocket class for Node) and the
 * sync and transport types.
 *
 * @example
 * import { webSocketTransport } from "@shoal/client/sync";
 * const stop = db.sync({ transports: [webSocketTransport({ url: ["wss://a.example.org", "wss://b.example.org"] })] });
 */
export { webSocketTransport } from "../transports/websocket-transport.ts";
export type { WebSocketTransportOptions } from "../transports/websocket-transport.ts";
export type { Transport, TransportConnection, TransportHandlers } from "../transports/transport.ts";
export type { SyncOptions } from "./sync-runner.ts";
export type {
  FlaggedDevice,
  MissingCommits,
  StuckCommit,
  SyncStatus,
  TransportStatus,
} from "../status/sync-status.ts";
