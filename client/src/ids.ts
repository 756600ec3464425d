import type { DeviceId, RecordId, SpaceId } from "./types.ts";

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

/** Lowercase hex of some bytes. */
export function toHex(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += HEX[b];
  return s;
}

/** `n` cryptographically random bytes (WebCrypto, in browsers and Node 20). */
export function randomBytes(n: number): Uint8Array {
  return globalThis.crypto.getRandomValues(new Uint8Array(n));
}

/** A fresh device id: 16 random bytes as hex. Opaque on purpose: the relay learns nothing from it. */
export function newDeviceId(): DeviceId {
  return toHex(randomBytes(16)) as DeviceId;
}

/** A fresh space id: 16 random bytes as hex. */
export function newSpaceId(): SpaceId {
  return toHex(randomBytes(16)) as SpaceId;
}

let lastMs = -1;
let lastRand: Uint8Array = new Uint8Array(10);

/**
 * A UUIDv7 (RFC 9562): 48-bit Unix milliseconds, then random bits. Ids sort by creation time and are
 * unique across devices without coordination. Within one millisecond of one page the random tail is
 * incremented instead of redrawn, so ids made in a burst still sort in creation order (RFC 9562 §6.2,
 * method 2). A clock stepping backwards only costs sort order, never uniqueness.
 *
 * @example
 * const id = uuidv7(); // "019374b2-5a1c-7d3e-9f21-0c4b6a8e2d17"
 */
export function uuidv7(now: number = Date.now()): RecordId {
  let rand: Uint8Array;
  if (now === lastMs) {
    rand = lastRand.slice();
    for (let i = rand.length - 1; i >= 0; i--) {
      rand[i] = (rand[i]! + 1) & 0xff;
      if (rand[i] !== 0) break;
    }
  } else {
    rand = randomBytes(10);
  }
  lastMs = now;
  lastRand = rand;
  const b = new Uint8Array(16);
  // 48-bit big-endian milliseconds; split because bitwise ops in JS are 32-bit.
  const hi = Math.floor(now / 2 ** 16);
  b[0] = (hi >>> 24) & 0xff;
  b[1] = (hi >>> 16) & 0xff;
  b[2] = (hi >>> 8) & 0xff;
  b[3] = hi & 0xff;
  b[4] = (now >>> 8) & 0xff;
  b[5] = now & 0xff;
  b.set(rand, 6);
  b[6] = 0x70 | (b[6]! & 0x0f); // version 7
  b[8] = 0x80 | (b[8]! & 0x3f); // RFC 9562 variant
  const h = toHex(b);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}` as RecordId;
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const ID16_RE = /^[0-9a-f]{32}$/;

/** True for a lowercase UUID string (the shape of every record id). */
export function isRecordId(value: unknown): value is RecordId {
  return typeof value === "string" && UUID_RE.test(value);
}

/** True for 32 lowercase hex characters (space and device ids). */
export function isId16(value: unknown): value is SpaceId & DeviceId {
  return typeof value === "string" && ID16_RE.test(value);
}
