// Sealed signal payloads (PROTOCOL.md, "signal (0x0d)"): only members of the space can read or make
// them, and the relay cannot readdress them; the peer network without WebRTC refuses to start.
import { describe, expect, it } from "vitest";
import { ValidationError } from "../errors.ts";
import { randomBytes } from "../ids.ts";
import { MAX_SIGNAL_PAYLOAD_BYTES, SIGNAL_BROADCAST } from "../protocol/index.ts";
import { PeerNetwork } from "./peer-signaling.ts";
import { deriveSignalKey, openSignal, sealSignal, type SignalBody } from "./signal-seal.ts";

const space = randomBytes(16);
const alice = randomBytes(16);
const bob = randomBytes(16);
const spaceKey = randomBytes(32);
const offer: SignalBody = { t: "offer", s: "s1", n: "n1", sdp: "v=0\r\n..." };

describe("signal sealing", () => {
  it("opens what it sealed, for the addressed device or a broadcast", async () => {
    const key = await deriveSignalKey(spaceKey, space);
    expect(await openSignal(key, space, alice, bob, await sealSignal(key, space, alice, bob, offer))).toEqual(
      offer,
    );
    const announce: SignalBody = { t: "announce", s: "s1" };
    expect(
      await openSignal(
        key,
        space,
        alice,
        SIGNAL_BROADCAST,
        await sealSignal(key, space, alice, SIGNAL_BROADCAST, announce),
      ),
    ).toEqual(announce);
  });

  it("does not open a readdressed, respaced, altered or foreign payload", async () => {
    const key = await deriveSignalKey(spaceKey, space);
    const payload = await sealSignal(key, space, alice, bob, offer);
    expect(await openSignal(key, space, alice, SIGNAL_BROADCAST, payload)).toBeNull(); // readdressed
    expect(await openSignal(key, space, bob, bob, payload)).toBeNull(); // another sender
    expect(await openSignal(key, randomBytes(16), alice, bob, payload)).toBeNull(); // another space
    const altered = payload.slice();
    altered[20]! ^= 1;
    expect(await openSignal(key, space, alice, bob, altered)).toBeNull();
    const otherKey = await deriveSignalKey(randomBytes(32), space);
    expect(await openSignal(otherKey, space, alice, bob, payload)).toBeNull();
    expect(await openSignal(key, space, alice, bob, new Uint8Array(10))).toBeNull();
  });

  it("refuses well-sealed bodies of the wrong shape", async () => {
    const key = await deriveSignalKey(spaceKey, space);
    for (const bad of [
      { t: "offer", s: "s1" },
      { t: "dance", s: "s1" },
      { t: "ice", s: "s1", n: "n1" },
      { t: "announce" },
    ]) {
      const payload = await sealSignal(key, space, alice, bob, bad as SignalBody);
      expect(await openSignal(key, space, alice, bob, payload)).toBeNull();
    }
  });

  it("refuses to seal a body over the frame's payload limit", async () => {
    const key = await deriveSignalKey(spaceKey, space);
    await expect(
      sealSignal(key, space, alice, bob, { ...offer, sdp: "x".repeat(MAX_SIGNAL_PAYLOAD_BYTES) }),
    ).rejects.toBeInstanceOf(ValidationError);
  });

  it("a peer network needs RTCPeerConnection (absent in Node)", () => {
    expect(
      () =>
        new PeerNetwork({
          dexie: {} as never,
          replica: { device: "00".repeat(16) } as never,
        }),
    ).toThrow(ValidationError);
  });
});
