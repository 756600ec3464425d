import { ProtocolError } from "../errors.ts";
import { ID_BYTES, MAX_SEQ } from "./limits.ts";

// Encoders validate what they are given with the same rules decoders apply, so a bug on the sending
// side fails loudly where it happens instead of as a refusal on the far side of the network.

/** Throws `bad-field` unless `value` is a Uint8Array of exactly `length` bytes. */
export function checkBytes(value: unknown, length: number, field: string): Uint8Array {
  if (!(value instanceof Uint8Array) || value.length !== length) {
    throw new ProtocolError("bad-field", `${field} must be ${length} bytes.`);
  }
  return value;
}

/** Throws `bad-field` unless `value` is a 16-byte id. */
export function checkId(value: unknown, field: string): Uint8Array {
  return checkBytes(value, ID_BYTES, field);
}

/** Throws `bad-field` unless `value` is a sequence number: an integer from 1 to 2^53 - 1. */
export function checkSeq(value: unknown, field: string): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 1 || value > MAX_SEQ) {
    throw new ProtocolError("bad-field", `${field} must be an integer from 1 to 2^53 - 1.`);
  }
  return value;
}

/** Throws `bad-field` unless `value` is an integer in [min, max]. */
export function checkInt(value: unknown, min: number, max: number, field: string): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    throw new ProtocolError("bad-field", `${field} must be an integer from ${min} to ${max}.`);
  }
  return value;
}
