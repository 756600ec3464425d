import { ValidationError } from "../errors.ts";

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const VALUES = new Int8Array(128).fill(-1);
for (let i = 0; i < ALPHABET.length; i++) VALUES[ALPHABET.charCodeAt(i)] = i;

/**
 * Encodes bytes as base64url without padding (RFC 4648 section 5): only `A-Z a-z 0-9 - _`, so the result
 * is safe in a URL fragment and in a `Sec-WebSocket-Protocol` token without any escaping.
 *
 * Written by hand rather than with `btoa` or `Buffer` so it runs the same in browsers, workers and Node.
 *
 * @example
 * bytesToBase64url(new Uint8Array([251, 255])); // "-_8"
 */
export function bytesToBase64url(bytes: Uint8Array): string {
  let out = "";
  let i = 0;
  for (; i + 2 < bytes.length; i += 3) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!;
    out += ALPHABET[n >> 18]! + ALPHABET[(n >> 12) & 63]! + ALPHABET[(n >> 6) & 63]! + ALPHABET[n & 63]!;
  }
  const rest = bytes.length - i;
  if (rest === 1) {
    const n = bytes[i]! << 16;
    out += ALPHABET[n >> 18]! + ALPHABET[(n >> 12) & 63]!;
  } else if (rest === 2) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8);
    out += ALPHABET[n >> 18]! + ALPHABET[(n >> 12) & 63]! + ALPHABET[(n >> 6) & 63]!;
  }
  return out;
}

/**
 * Decodes unpadded base64url. Strict and canonical: padding, `+ /`, whitespace, an impossible length, or
 * non-zero unused bits in the last character all throw. Canonical decoding means one byte string has
 * exactly one text form, so a changed last character of a key cannot decode to the same key.
 *
 * @throws {ValidationError} when the text is not canonical unpadded base64url.
 * @example
 * base64urlToBytes("-_8"); // Uint8Array [251, 255]
 */
export function base64urlToBytes(text: string): Uint8Array {
  if (text.length % 4 === 1)
    throw new ValidationError(`Base64url text has an impossible length (${text.length}).`);
  const out = new Uint8Array(Math.floor((text.length * 3) / 4));
  let acc = 0;
  let bits = 0;
  let o = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    const v = c < 128 ? VALUES[c]! : -1;
    if (v < 0) throw new ValidationError(`Base64url text has an invalid character at position ${i}.`);
    acc = ((acc << 6) | v) & 0xffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (acc >> bits) & 0xff;
    }
  }
  if ((acc & ((1 << bits) - 1)) !== 0) {
    throw new ValidationError("Base64url text is not canonical: its last character has stray bits.");
  }
  return out;
}
