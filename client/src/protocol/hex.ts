import { ProtocolError } from "../errors.ts";

const ID_HEX = /^[0-9a-f]{32}$/;

/**
 * Lowercase hex of some bytes (ids travel as bytes on the wire and as hex in URLs, logs and keys).
 *
 * @example
 * toHex(new Uint8Array([1, 171])); // "01ab"
 */
export function toHex(bytes: Uint8Array): string {
  let out = "";
  for (const b of bytes) out += b.toString(16).padStart(2, "0");
  return out;
}

/**
 * Parses lowercase or uppercase hex; throws `ProtocolError("bad-field")` on odd length or a non-hex
 * character, or when `expectedBytes` is given and the length differs.
 *
 * @example
 * fromHex("01ab"); // Uint8Array [1, 171]
 */
export function fromHex(hex: string, expectedBytes?: number): Uint8Array {
  if (hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) {
    throw new ProtocolError("bad-field", "Not a hex string.");
  }
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  if (expectedBytes !== undefined && out.length !== expectedBytes) {
    throw new ProtocolError("bad-field", `Expected ${expectedBytes} bytes of hex, got ${out.length}.`);
  }
  return out;
}

/**
 * True for a space or device id in its canonical text form: 32 lowercase hex characters.
 *
 * @example
 * isIdHex("00112233445566778899aabbccddeeff"); // true
 */
export function isIdHex(value: string): boolean {
  return ID_HEX.test(value);
}

/**
 * Constant-length byte equality (not constant-time: use it for ids and hashes, not secrets).
 *
 * @example
 * bytesEqual(new Uint8Array([1]), new Uint8Array([1])); // true
 */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
