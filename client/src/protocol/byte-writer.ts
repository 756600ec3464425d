/**
 * Growable big-endian writer used by the encoders; `finish()` returns exactly the bytes written.
 *
 * @example
 * const w = new ByteWriter();
 * w.u8(1); w.u32(42);
 * w.finish(); // Uint8Array(5)
 */
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
