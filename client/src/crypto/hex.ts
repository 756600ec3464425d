import { ValidationError } from "../errors.ts";

const DIGITS = "0123456789abcdef";

/**
 * Encodes bytes as lowercase hex, the form Shoal uses for space and device ids on the wire and in URLs.
 *
 * @example
 * bytesToHex(new Uint8Array([0, 171, 255])); // "00abff"
 */
export function bytesToHex(bytes: Uint8Array): string {
  let out = "";
  for (const b of bytes) out += DIGITS[b >> 4]! + DIGITS[b & 15]!;
  return out;
}

/**
 * Decodes hex (either case) into bytes. Strict: an odd length or any non-hex character throws, because a
 * silently shortened id would name a different space.
 *
 * @throws {ValidationError} on odd length or a non-hex character.
 * @example
 * hexToBytes("00abff"); // Uint8Array [0, 171, 255]
 */
export function hexToBytes(hex: string): Uint8Array {
  if (hex.length % 2 !== 0) throw new ValidationError(`Hex text has an odd length (${hex.length}).`);
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) {
    const hi = nibble(hex.charCodeAt(2 * i));
    const lo = nibble(hex.charCodeAt(2 * i + 1));
    if (hi < 0 || lo < 0)
      throw new ValidationError(`Hex text has a non-hex character near position ${2 * i}.`);
    out[i] = (hi << 4) | lo;
  }
  return out;
}

function nibble(c: number): number {
  if (c >= 48 && c <= 57) return c - 48; // 0-9
  if (c >= 97 && c <= 102) return c - 87; // a-f
  if (c >= 65 && c <= 70) return c - 55; // A-F
  return -1;
}
