import { ProtocolError } from "../errors.ts";

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const LOOKUP = new Map([...ALPHABET].map((c, i) => [c, i]));

/**
 * Unpadded base64url (RFC 4648 section 5). Written by hand because `btoa` works on strings and
 * `Buffer` is Node-only; padding is omitted because `=` is not allowed in a `Sec-WebSocket-Protocol`
 * token (RFC 6455 section 4.1, RFC 7230 tchar).
 *
 * @example
 * encodeBase64Url(new Uint8Array([251, 255])); // "-_8"
 */
export function encodeBase64Url(bytes: Uint8Array): string {
  let out = "";
  for (let i = 0; i < bytes.length; i += 3) {
    const n = ((bytes[i] ?? 0) << 16) | ((bytes[i + 1] ?? 0) << 8) | (bytes[i + 2] ?? 0);
    const chars = Math.min(4, Math.ceil(((bytes.length - i) * 8) / 6));
    for (let j = 0; j < chars; j++) out += ALPHABET[(n >> (18 - 6 * j)) & 63];
  }
  return out;
}

/**
 * Decodes unpadded base64url; throws `ProtocolError("bad-field")` on any other character, on padding,
 * on an impossible length, or on non-zero trailing bits (so each byte string has one encoding).
 *
 * @example
 * decodeBase64Url("-_8"); // Uint8Array [251, 255]
 */
export function decodeBase64Url(text: string): Uint8Array {
  if (text.length % 4 === 1) throw new ProtocolError("bad-field", "Invalid base64url length.");
  const out = new Uint8Array(Math.floor((text.length * 6) / 8));
  let acc = 0;
  let bits = 0;
  let o = 0;
  for (const c of text) {
    const v = LOOKUP.get(c);
    if (v === undefined) throw new ProtocolError("bad-field", "Invalid base64url character.");
    acc = ((acc << 6) | v) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (acc >> bits) & 0xff;
    }
  }
  if ((acc & ((1 << bits) - 1)) !== 0) throw new ProtocolError("bad-field", "Non-canonical base64url.");
  return out;
}
