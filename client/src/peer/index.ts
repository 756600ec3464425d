/**
 * @shoal/client/peer: direct device-to-device sync over WebRTC. `db.sync({ relay, webrtc: {} })` loads
 * the peer network on its own when asked for (a relay-only app never downloads it); this entry is for
 * apps that negotiate their own data channels and sync a space over one as a `Transport`.
 *
 * @example
 * import { webRtcTransport } from "@shoal/client/peer";
 * const stop = db.sync({ transports: [webRtcTransport({ channel, peer: otherDeviceId })] });
 */
export { webRtcTransport } from "../transports/webrtc-transport.ts";
export type { DataChannelLike } from "../transports/webrtc-transport.ts";
export type { PeerConnectionConstructor } from "./peer-network-options.ts";
