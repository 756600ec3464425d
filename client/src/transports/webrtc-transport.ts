import { concatBytes } from "../crypto/bytes.ts";
import { MAX_FRAME_BYTES } from "../protocol/index.ts";
import type { Transport, TransportConnection, TransportHandlers } from "./transport.ts";
import type { SpaceId } from "../types.ts";

/**
 * What this adapter uses of an `RTCDataChannel`, so that Node tests can plug in an in-memory pair.
 * Handler parameters are `never` so the browser's own event types are accepted (parameters are checked
 * contravariantly); the handlers below state what they read.
 */
export interface DataChannelLike {
  readonly label: string;
  readonly readyState: string;
  readonly bufferedAmount: number;
  bufferedAmountLowThreshold: number;
  binaryType: string;
  onopen: ((event: never) => void) | null;
  onmessage: ((event: never) => void) | null;
  onclose: ((event: never) => void) | null;
  onerror: ((event: never) => void) | null;
  onbufferedamountlow: ((event: never) => void) | null;
  send(data: Uint8Array<ArrayBuffer>): void;
  close(): void;
}

/**
 * Bytes of one data-channel message at most. Chromium accepts 256 KiB and Firefox more, but 16 KiB is
 * what every WebRTC stack has always delivered whole (RFC 8831 6.6 warns about larger ones), and the
 * protocol's frames go up to 1 MiB, so frames are cut into pieces anyway.
 */
export const PEER_CHUNK_BYTES = 16 * 1024;
/** First byte of a piece: more pieces of this frame follow. */
const MORE = 0x00;
/** First byte of a piece: the frame ends with this piece. */
const LAST = 0x01;
/**
 * Pieces are handed to the channel while its own buffer holds less than this; the rest waits here.
 * Chromium closes a channel whose send buffer passes 16 MiB, so the channel must never see a burst.
 */
const HIGH_WATER = 1024 * 1024;
/** `bufferedamountlow` fires when the channel's buffer falls to this: time to hand it more. */
const LOW_WATER = 256 * 1024;
// WebSocket close codes, which the engine already understands: normal, abnormal, too big, protocol.
const NORMAL = 1000;
const ABNORMAL = 1006;
const TOO_BIG = 1009;
const UNSUPPORTED = 1003;

/**
 * Carries whole protocol frames over one data channel, as the WebSocket transport does over a socket:
 * same `TransportHandlers` contract (`onOpen` once the channel is open, `onClose` exactly once and never
 * inside a call), with the frames cut into pieces of at most `PEER_CHUNK_BYTES` (PROTOCOL.md section
 * 1.1) and with backpressure: pieces wait in this link while the channel's `bufferedAmount` is over
 * 1 MiB and go out on `bufferedamountlow`; `bufferedAmount` reports both, so the sync engine's upload
 * window sees the real backlog. A reassembled frame over `MAX_FRAME_BYTES`, or a text message, closes
 * the link (the peer is broken or hostile).
 *
 * The link takes over the channel's event handlers; closing the link closes the channel.
 *
 * @example
 * const conn = openDataChannelLink(channel, { onOpen, onMessage: (f) => handle(decodeMessage(f)), onClose });
 * conn.send(encodeMessage({ type: "ping", nonce: 1 }));
 */
export function openDataChannelLink(
  channel: DataChannelLike,
  handlers: TransportHandlers,
): TransportConnection {
  let state: "connecting" | "open" | "closed" = "connecting";
  const queue: Uint8Array<ArrayBuffer>[] = [];
  let queued = 0;
  let incoming: Uint8Array[] = [];
  let incomingBytes = 0;

  const detach = (): void => {
    channel.onopen =
      channel.onmessage =
      channel.onclose =
      channel.onerror =
      channel.onbufferedamountlow =
        null;
  };
  const finish = (reason: string, code: number): void => {
    if (state === "closed") return;
    state = "closed";
    detach();
    queue.length = 0;
    queued = 0;
    incoming = [];
    handlers.onClose(reason, code);
  };
  const fail = (reason: string, code: number): void => {
    try {
      channel.close();
    } catch {
      // Already closing: the outcome is the same.
    }
    finish(reason, code);
  };
  const open = (): void => {
    if (state !== "connecting") return;
    state = "open";
    handlers.onOpen();
  };
  const pump = (): void => {
    while (state === "open" && queue.length > 0 && channel.bufferedAmount < HIGH_WATER) {
      const piece = queue.shift()!;
      queued -= piece.length;
      try {
        channel.send(piece);
      } catch (e) {
        // The channel went away under us (its close event may still be on its way).
        fail(e instanceof Error ? e.message : "send failed", ABNORMAL);
        return;
      }
    }
  };

  channel.binaryType = "arraybuffer";
  channel.bufferedAmountLowThreshold = LOW_WATER;
  channel.onbufferedamountlow = () => pump();
  channel.onerror = () => {};
  channel.onopen = () => open();
  channel.onclose = () => finish("peer channel closed", ABNORMAL);
  channel.onmessage = (event: { data: unknown }) => {
    if (state !== "open") return;
    const data = event.data;
    const piece =
      data instanceof ArrayBuffer
        ? new Uint8Array(data)
        : ArrayBuffer.isView(data)
          ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
          : null;
    if (!piece || piece.length === 0 || (piece[0] !== MORE && piece[0] !== LAST)) {
      fail("The peer sent a message that is not a frame piece.", UNSUPPORTED);
      return;
    }
    incomingBytes += piece.length - 1;
    if (incomingBytes > MAX_FRAME_BYTES) {
      fail(`The peer sent a frame over ${MAX_FRAME_BYTES} bytes.`, TOO_BIG);
      return;
    }
    incoming.push(piece.subarray(1));
    if (piece[0] === MORE) return;
    const frame = concatBytes(...incoming);
    incoming = [];
    incomingBytes = 0;
    handlers.onMessage(frame);
  };
  if (channel.readyState === "open") queueMicrotask(open);
  else if (channel.readyState === "closing" || channel.readyState === "closed")
    queueMicrotask(() => finish("peer channel closed", ABNORMAL));

  return {
    send(frame: Uint8Array): void {
      if (state !== "open") return;
      for (let at = 0; at < frame.length || at === 0; at += PEER_CHUNK_BYTES - 1) {
        const end = Math.min(frame.length, at + PEER_CHUNK_BYTES - 1);
        const piece = new Uint8Array(end - at + 1);
        piece[0] = end === frame.length ? LAST : MORE;
        piece.set(frame.subarray(at, end), 1);
        queue.push(piece);
        queued += piece.length;
        if (end === frame.length) break;
      }
      pump();
    },
    get bufferedAmount(): number {
      return queued + (state === "open" ? channel.bufferedAmount : 0);
    },
    close(reason = "closed"): void {
      if (state === "closed") return;
      state = "closed";
      detach();
      try {
        channel.close();
      } catch {
        // Already closed.
      }
      queueMicrotask(() => handlers.onClose(reason, NORMAL));
    },
  };
}

/**
 * A `Transport` over one already negotiated data channel to one peer device (kind `"webrtc"`, label the
 * peer's device id prefix). Each `connect` wraps the channel as it is: the first one gets the open
 * channel; once that connection closed, the channel is closed too and later attempts close at once, so
 * whoever owns the peer connection negotiates a new channel and makes a new transport.
 *
 * @example
 * const transport = webRtcTransport({ channel, peer: peerDeviceId });
 * new SpaceSession({ transport, ... }).start();
 */
export function webRtcTransport(options: { channel: DataChannelLike; peer: string }): Transport {
  return {
    kind: "webrtc",
    label: options.peer.slice(0, 8),
    connect: (_space: SpaceId, _token: Uint8Array, handlers: TransportHandlers): TransportConnection =>
      // No token on a peer link: only devices that opened each other's sealed signals get this far.
      openDataChannelLink(options.channel, handlers),
  };
}
