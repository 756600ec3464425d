// Codec tests of the `signal` frame (0x0d): WebRTC signalling forwarded by the relay between the
// connections of one space (PROTOCOL.md, "signal"). Kept beside codec.test.ts so that file stays as it is.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { ProtocolError } from "../errors.ts";
import { decodeMessage, encodeMessage } from "./codec.ts";
import { fromHex, toHex } from "./hex.ts";
import { MAX_SIGNAL_PAYLOAD_BYTES, SIGNAL_BROADCAST } from "./limits.ts";
import type { SignalMessage } from "./messages.ts";

const space = fromHex("5a".repeat(16));
const device = fromHex("00112233445566778899aabbccddeeff");

// The same bytes appear in PROTOCOL.md, section "Worked example".
const EXAMPLE_HEX = `02 0d 5a 5a 5a 5a 5a 5a 5a 5a 5a 5a 5a 5a 5a 5a
5a 5a 00 11 22 33 44 55 66 77 88 99 aa bb cc dd
ee ff 00 00 00 00 00 00 00 00 00 00 00 00 00 00
00 00 00 04 de ad be ef`;
const EXAMPLE: SignalMessage = {
  type: "signal",
  space,
  from: device,
  to: new Uint8Array(SIGNAL_BROADCAST),
  payload: fromHex("deadbeef"),
};

function bytesOf(hex: string): Uint8Array {
  return fromHex(hex.replace(/\s+/g, ""));
}

function reason(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof ProtocolError) return e.reason;
    throw e;
  }
  return "accepted";
}

describe("codec: signal frame", () => {
  it("encodes and decodes the worked example byte for byte", () => {
    expect(toHex(encodeMessage(EXAMPLE))).toBe(toHex(bytesOf(EXAMPLE_HEX)));
    expect(decodeMessage(bytesOf(EXAMPLE_HEX))).toEqual(EXAMPLE);
  });

  it("PROTOCOL.md shows the same bytes", () => {
    const doc = readFileSync(new URL("../../../PROTOCOL.md", import.meta.url), "utf8").replace(/\s+/g, " ");
    expect(doc).toContain(EXAMPLE_HEX.replace(/\s+/g, " "));
  });

  it("round-trips an empty payload and the largest one", () => {
    for (const size of [0, MAX_SIGNAL_PAYLOAD_BYTES]) {
      const m: SignalMessage = { ...EXAMPLE, to: device, payload: new Uint8Array(size).fill(7) };
      const frame = encodeMessage(m);
      expect(frame.length).toBe(52 + size);
      expect(decodeMessage(frame)).toEqual(m);
    }
  });

  it("refuses a payload over the limit, both ways", () => {
    const big = { ...EXAMPLE, payload: new Uint8Array(MAX_SIGNAL_PAYLOAD_BYTES + 1) };
    expect(reason(() => encodeMessage(big))).toBe("oversized");
    // Hand-made frame whose length field claims one byte too many.
    const frame = new Uint8Array(52 + MAX_SIGNAL_PAYLOAD_BYTES + 1);
    frame.set(bytesOf(EXAMPLE_HEX).subarray(0, 50));
    new DataView(frame.buffer).setUint16(50, MAX_SIGNAL_PAYLOAD_BYTES + 1);
    expect(reason(() => decodeMessage(frame))).toBe("oversized");
  });

  it("rejects every truncation and trailing bytes", () => {
    const frame = bytesOf(EXAMPLE_HEX);
    for (let n = 0; n < frame.length; n++)
      expect(reason(() => decodeMessage(frame.subarray(0, n)))).toBe("truncated");
    expect(reason(() => decodeMessage(Uint8Array.of(...frame, 0)))).toBe("trailing-bytes");
  });

  it("refuses ids of the wrong length when encoding", () => {
    expect(reason(() => encodeMessage({ ...EXAMPLE, from: new Uint8Array(15) }))).toBe("bad-field");
    expect(reason(() => encodeMessage({ ...EXAMPLE, to: new Uint8Array(17) }))).toBe("bad-field");
  });
});
