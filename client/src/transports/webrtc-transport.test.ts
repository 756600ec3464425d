// The data-channel link under the WebRTC transport, on an in-memory channel pair: whole frames in
// order, pieces within the message limit, backpressure through bufferedAmount, closes reported once.
import { describe, expect, it } from "vitest";
import { MAX_FRAME_BYTES } from "../protocol/index.ts";
import type { TransportHandlers } from "./transport.ts";
import { dataChannelPair } from "./data-channel-pair.ts";
import { PEER_CHUNK_BYTES, openDataChannelLink, webRtcTransport } from "./webrtc-transport.ts";

/** Handlers that record what happened, with bounded waits on counts. */
function recorder() {
  const r = {
    opened: 0,
    frames: [] as Uint8Array[],
    closes: [] as { reason: string; code: number | undefined }[],
    waiters: [] as (() => void)[],
    handlers: {} as TransportHandlers,
    async until(pred: () => boolean, what: string, ms = 5000): Promise<void> {
      const deadline = Date.now() + ms;
      while (!pred()) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
        await new Promise<void>((res) => {
          r.waiters.push(res);
          setTimeout(res, 50);
        });
      }
    },
  };
  const wake = () => r.waiters.splice(0).forEach((w) => w());
  r.handlers = {
    onOpen: () => {
      r.opened++;
      wake();
    },
    onMessage: (f) => {
      r.frames.push(f);
      wake();
    },
    onClose: (reason, code) => {
      r.closes.push({ reason, code });
      wake();
    },
  };
  return r;
}

/** Byte equality without vitest's element-by-element diffing, which takes seconds on megabytes. */
function same(a: Uint8Array | undefined, b: Uint8Array): boolean {
  return !!a && a.length === b.length && Buffer.compare(a, b) === 0;
}

function frameOf(size: number, seed: number): Uint8Array {
  const f = new Uint8Array(size);
  for (let i = 0; i < size; i++) f[i] = (i * 31 + seed) & 0xff;
  return f;
}

describe("data channel link", () => {
  it("opens, and carries frames of every size whole and in order, in pieces no larger than the chunk", async () => {
    const [a, b] = dataChannelPair({ maxMessageBytes: PEER_CHUNK_BYTES });
    const ra = recorder();
    const rb = recorder();
    const ca = openDataChannelLink(a, ra.handlers);
    openDataChannelLink(b, rb.handlers);
    await ra.until(() => ra.opened === 1, "open");
    const sizes = [0, 1, PEER_CHUNK_BYTES - 1, PEER_CHUNK_BYTES, 3 * PEER_CHUNK_BYTES + 5, MAX_FRAME_BYTES];
    sizes.forEach((s, i) => ca.send(frameOf(s, i)));
    await rb.until(() => rb.frames.length === sizes.length, "frames");
    sizes.forEach((s, i) => expect(same(rb.frames[i], frameOf(s, i)), `frame ${i}`).toBe(true));
    expect(a.largestSent).toBeLessThanOrEqual(PEER_CHUNK_BYTES);
    // 0 and 1 byte: one piece each; the rest: ceil(size / (chunk - 1)).
    const pieces = sizes.reduce((n, s) => n + Math.max(1, Math.ceil(s / (PEER_CHUNK_BYTES - 1))), 0);
    expect(a.sent).toBe(pieces);
  });

  it("keeps the channel's own buffer bounded and reports the backlog in bufferedAmount", async () => {
    const [a, b] = dataChannelPair();
    const ra = recorder();
    const rb = recorder();
    const ca = openDataChannelLink(a, ra.handlers);
    openDataChannelLink(b, rb.handlers);
    await ra.until(() => ra.opened === 1, "open");
    a.pause();
    const frames = 8;
    for (let i = 0; i < frames; i++) ca.send(frameOf(512 * 1024, i));
    // 4 MiB sent while nothing moves: the channel holds about 1 MiB, the link the rest.
    expect(ca.bufferedAmount).toBeGreaterThanOrEqual(frames * 512 * 1024);
    expect(a.bufferedAmount).toBeLessThanOrEqual(1024 * 1024 + PEER_CHUNK_BYTES);
    a.resume();
    await rb.until(() => rb.frames.length === frames, "frames after resume", 20_000);
    for (let i = 0; i < frames; i++)
      expect(same(rb.frames[i], frameOf(512 * 1024, i)), `frame ${i}`).toBe(true);
    expect(a.peakBuffered).toBeLessThanOrEqual(1024 * 1024 + PEER_CHUNK_BYTES);
    expect(ca.bufferedAmount).toBe(0);
  });

  it("reports a close once, to both ends, never synchronously", async () => {
    const [a, b] = dataChannelPair();
    const ra = recorder();
    const rb = recorder();
    const ca = openDataChannelLink(a, ra.handlers);
    openDataChannelLink(b, rb.handlers);
    await ra.until(() => ra.opened === 1, "open");
    ca.close("bye");
    expect(ra.closes).toHaveLength(0);
    await rb.until(() => rb.closes.length === 1, "peer close");
    await ra.until(() => ra.closes.length === 1, "own close");
    ca.close("again");
    ca.send(Uint8Array.of(1));
    await new Promise((r) => setTimeout(r, 10));
    expect(ra.closes).toEqual([{ reason: "bye", code: 1000 }]);
    expect(rb.closes).toHaveLength(1);
  });

  it("closes on a piece that is not a frame piece, and on a frame over the limit", async () => {
    for (const bad of ["garbage", "oversized"] as const) {
      const [a, b] = dataChannelPair();
      const rb = recorder();
      openDataChannelLink(b, rb.handlers);
      await new Promise((r) => setTimeout(r, 0));
      if (bad === "garbage") a.send(Uint8Array.of(7, 1, 2));
      else {
        const piece = new Uint8Array(PEER_CHUNK_BYTES);
        for (let sent = 0; sent <= MAX_FRAME_BYTES; sent += PEER_CHUNK_BYTES - 1) a.send(piece); // all "more"
      }
      await rb.until(() => rb.closes.length === 1, `close on ${bad}`);
      expect(rb.closes[0]!.code).toBe(bad === "garbage" ? 1003 : 1009);
      expect(rb.frames).toHaveLength(0);
    }
  });

  it("as a Transport: kind webrtc, label the peer's prefix, and a closed channel closes the next connect", async () => {
    const [a] = dataChannelPair();
    const t = webRtcTransport({ channel: a, peer: "0123456789abcdef0123456789abcdef" });
    expect(t.kind).toBe("webrtc");
    expect(t.label).toBe("01234567");
    const r1 = recorder();
    const c1 = t.connect("x" as never, new Uint8Array(0), r1.handlers);
    await r1.until(() => r1.opened === 1, "open");
    c1.close();
    const r2 = recorder();
    t.connect("x" as never, new Uint8Array(0), r2.handlers);
    await r2.until(() => r2.closes.length === 1, "second connect closes");
    expect(r2.opened).toBe(0);
  });
});
