import { ProtocolError } from "../errors.ts";
import { MAX_SEQ } from "./limits.ts";

/**
 * Sequential big-endian reader over a frame. Every read past the end throws `ProtocolError("truncated")`
 * naming the field, so decoders never index out of bounds and errors say where a frame broke.
 *
 * @example
 * const r = new ByteReader(bytes);
 * const type = r.u8("type");
 * r.end(); // throws "trailing-bytes" if anything is left
 */
export class ByteReader {
  readonly #bytes: Uint8Array;
  readonly #view: DataView;
  #pos = 0;

  constructor(bytes: Uint8Array) {
    this.#bytes = bytes;
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  /** Bytes not read yet. */
  get remaining(): number {
    return this.#bytes.length - this.#pos;
  }

  u8(field: string): number {
    this.#need(1, field);
    return this.#view.getUint8(this.#pos++);
  }

  u16(field: string): number {
    this.#need(2, field);
    const v = this.#view.getUint16(this.#pos);
    this.#pos += 2;
    return v;
  }

  u32(field: string): number {
    this.#need(4, field);
    const v = this.#view.getUint32(this.#pos);
    this.#pos += 4;
    return v;
  }

  /** A u64 that must hold a sequence number: 1 to 2^53 - 1. */
  seq(field: string): number {
    this.#need(8, field);
    const hi = this.#view.getUint32(this.#pos);
    const lo = this.#view.getUint32(this.#pos + 4);
    this.#pos += 8;
    const v = hi * 2 ** 32 + lo;
    if (hi > 0x1fffff || v < 1 || v > MAX_SEQ) {
      throw new ProtocolError("bad-field", `${field} must be an integer from 1 to 2^53 - 1.`);
    }
    return v;
  }

  /** A copy, never a view: a Node `Buffer` may share a pooled allocation with unrelated data. */
  bytes(length: number, field: string): Uint8Array {
    this.#need(length, field);
    const out = new Uint8Array(length);
    out.set(this.#bytes.subarray(this.#pos, this.#pos + length));
    this.#pos += length;
    return out;
  }

  /** Throws `trailing-bytes` unless the whole input was consumed. */
  end(what: string): void {
    if (this.remaining !== 0) {
      throw new ProtocolError("trailing-bytes", `${this.remaining} unexpected bytes after the ${what}.`);
    }
  }

  #need(n: number, field: string): void {
    if (this.#pos + n > this.#bytes.length) {
      throw new ProtocolError("truncated", `Frame ends inside ${field}.`);
    }
  }
}
