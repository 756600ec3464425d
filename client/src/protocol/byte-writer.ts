/**
 * Growable big-endian writer used by the encoders; `finish()` returns exactly the bytes written.
 *
 * @example
 * const w = new ByteWriter();
 * w.u8(1); w.u32(42);
 * w.finish(); // Uint8Array(5)
 */
const UTF8 = new TextEncoder();
// Up to this many UTF-16 units a plain loop beats a call into the encoder.
const SHORT_STRING = 64;

export class ByteWriter {
  #buf: Uint8Array;
  #view: DataView;
  #pos = 0;

  constructor(initialSize = 256) {
    this.#buf = new Uint8Array(initialSize);
    this.#view = new DataView(this.#buf.buffer);
  }

  u8(v: number): void {
    this.#room(1);
    this.#view.setUint8(this.#pos++, v);
  }

  u16(v: number): void {
    this.#room(2);
    this.#view.setUint16(this.#pos, v);
    this.#pos += 2;
  }

  u32(v: number): void {
    this.#room(4);
    this.#view.setUint32(this.#pos, v);
    this.#pos += 4;
  }

  /** Big-endian u64 of a number below 2^53 (callers validate the range). */
  u64(v: number): void {
    this.#room(8);
    this.#view.setUint32(this.#pos, Math.floor(v / 2 ** 32));
    this.#view.setUint32(this.#pos + 4, v >>> 0);
    this.#pos += 8;
  }

  bytes(b: Uint8Array): void {
    this.#room(b.length);
    this.#buf.set(b, this.#pos);
    this.#pos += b.length;
  }

  /**
   * The UTF-8 of `s` (as `TextEncoder` gives it: a lone surrogate becomes U+FFFD) after its byte length
   * as a u16 (`lengthBytes` 2) or u32 (4), written straight into the buffer: no array per string,
   * which for the many short strings of a commit was most of the encoder's time (garbage collection).
   * Returns the byte length; if it does not fit the length field, nothing is written.
   */
  utf8(s: string, lengthBytes: 2 | 4): number {
    this.#room(lengthBytes + s.length * 3);
    const start = this.#pos + lengthBytes;
    const buf = this.#buf;
    let n = 0;
    // Short ASCII strings (names, paths) byte by byte; anything else through the platform's encoder.
    if (s.length <= SHORT_STRING) {
      for (; n < s.length; n++) {
        const c = s.charCodeAt(n);
        if (c >= 0x80) break;
        buf[start + n] = c;
      }
    }
    if (n < s.length) n += UTF8.encodeInto(n === 0 ? s : s.slice(n), buf.subarray(start + n)).written;
    if (lengthBytes === 2 ? n > 0xffff : n > 0xffffffff) return n;
    if (lengthBytes === 2) this.#view.setUint16(this.#pos, n);
    else this.#view.setUint32(this.#pos, n);
    this.#pos = start + n;
    return n;
  }

  /** The bytes written: the buffer itself when they fill it exactly (an encoder that sized it), else a copy. */
  finish(): Uint8Array {
    return this.#pos === this.#buf.length ? this.#buf : this.#buf.slice(0, this.#pos);
  }

  #room(n: number): void {
    if (this.#pos + n <= this.#buf.length) return;
    let size = this.#buf.length * 2;
    while (size < this.#pos + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.#buf.subarray(0, this.#pos));
    this.#buf = next;
    this.#view = new DataView(next.buffer);
  }
}
