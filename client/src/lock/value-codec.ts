import { ValidationError } from "../errors.ts";

// Tags of the encoding. It must be synchronous: values are encoded inside IndexedDB transactions, which
// commit as soon as a task awaits anything else (so `CompressionStream` or WebCrypto cannot be used).
const UNDEFINED = 0;
const NULL = 1;
const FALSE = 2;
const TRUE = 3;
const NUMBER = 4;
const STRING = 5;
const BYTES = 6;
const ARRAY = 7;
const OBJECT = 8;
const BUFFER = 9;
const DATE = 10;
const BIGINT = 11;

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder("utf-8", { fatal: true });

class Writer {
  buf = new Uint8Array(256);
  view = new DataView(this.buf.buffer);
  at = 0;

  room(n: number): void {
    if (this.at + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.at + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.at));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }
  tag(t: number): void {
    this.room(1);
    this.buf[this.at++] = t;
  }
  u32(n: number): void {
    this.room(4);
    this.view.setUint32(this.at, n);
    this.at += 4;
  }
  f64(n: number): void {
    this.room(8);
    this.view.setFloat64(this.at, n);
    this.at += 8;
  }
  bytes(b: Uint8Array): void {
    this.u32(b.length);
    this.room(b.length);
    this.buf.set(b, this.at);
    this.at += b.length;
  }
  string(s: string): void {
    this.bytes(utf8.encode(s));
  }
}

/**
 * Encodes a stored value (what IndexedDB's structured clone would keep: plain objects, arrays, strings,
 * numbers, booleans, null, undefined, bigints, Dates, Uint8Arrays and ArrayBuffers) to bytes, so it can
 * be encrypted synchronously. Anything else (a `CryptoKey`, a `Map`) is a `ValidationError`: a locked
 * database must never store what it cannot encrypt.
 *
 * @example
 * const bytes = encodeValue({ notes: "x", bin: new Uint8Array([1]) });
 */
export function encodeValue(value: unknown): Uint8Array {
  const w = new Writer();
  write(w, value, 0);
  return w.buf.slice(0, w.at);
}

function write(w: Writer, v: unknown, depth: number): void {
  if (depth > 200) throw new ValidationError("A stored value is nested too deeply to encrypt.");
  if (v === undefined) return w.tag(UNDEFINED);
  if (v === null) return w.tag(NULL);
  switch (typeof v) {
    case "boolean":
      return w.tag(v ? TRUE : FALSE);
    case "number":
      w.tag(NUMBER);
      return w.f64(v);
    case "string":
      w.tag(STRING);
      return w.string(v);
    case "bigint":
      w.tag(BIGINT);
      return w.string(v.toString());
    case "object":
      break;
    default:
      throw new ValidationError(`A ${typeof v} cannot be stored in a locked database.`);
  }
  if (v instanceof Uint8Array) {
    w.tag(BYTES);
    return w.bytes(v);
  }
  if (v instanceof ArrayBuffer) {
    w.tag(BUFFER);
    return w.bytes(new Uint8Array(v));
  }
  if (v instanceof Date) {
    w.tag(DATE);
    return w.f64(v.getTime());
  }
  if (Array.isArray(v)) {
    w.tag(ARRAY);
    w.u32(v.length);
    for (const item of v as unknown[]) write(w, item, depth + 1);
    return;
  }
  const proto = Object.getPrototypeOf(v) as unknown;
  if (proto !== Object.prototype && proto !== null)
    throw new ValidationError(
      `A ${(v as object).constructor?.name ?? "value"} cannot be stored in a locked database: it cannot be encrypted.`,
    );
  const keys = Object.keys(v);
  w.tag(OBJECT);
  w.u32(keys.length);
  for (const k of keys) {
    w.string(k);
    write(w, (v as Record<string, unknown>)[k], depth + 1);
  }
}

/** Decodes what `encodeValue` made. Throws on bytes it did not make (they were authenticated first). */
export function decodeValue(bytes: Uint8Array): unknown {
  const r = { at: 0, view: new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength), bytes };
  const v = read(r);
  if (r.at !== bytes.length) throw new RangeError("Trailing bytes after a stored value.");
  return v;
}

interface Reader {
  at: number;
  view: DataView;
  bytes: Uint8Array;
}

function u32(r: Reader): number {
  const n = r.view.getUint32(r.at);
  r.at += 4;
  return n;
}

function chunk(r: Reader): Uint8Array {
  const n = u32(r);
  if (r.at + n > r.bytes.length) throw new RangeError("A stored value is truncated.");
  const b = r.bytes.slice(r.at, r.at + n);
  r.at += n;
  return b;
}

function read(r: Reader): unknown {
  const tag = r.bytes[r.at++];
  switch (tag) {
    case UNDEFINED:
      return undefined;
    case NULL:
      return null;
    case FALSE:
      return false;
    case TRUE:
      return true;
    case NUMBER: {
      const n = r.view.getFloat64(r.at);
      r.at += 8;
      return n;
    }
    case STRING:
      return fromUtf8.decode(chunk(r));
    case BIGINT:
      return BigInt(fromUtf8.decode(chunk(r)));
    case BYTES:
      return chunk(r);
    case BUFFER:
      return chunk(r).buffer;
    case DATE: {
      const t = r.view.getFloat64(r.at);
      r.at += 8;
      return new Date(t);
    }
    case ARRAY: {
      const n = u32(r);
      const out: unknown[] = [];
      for (let i = 0; i < n; i++) out.push(read(r));
      return out;
    }
    case OBJECT: {
      const n = u32(r);
      const out: Record<string, unknown> = {};
      for (let i = 0; i < n; i++) {
        const k = fromUtf8.decode(chunk(r));
        // defineProperty, not assignment: a key "__proto__" must stay a plain key.
        Object.defineProperty(out, k, {
          value: read(r),
          enumerable: true,
          writable: true,
          configurable: true,
        });
      }
      return out;
    }
    default:
      throw new RangeError(`Unknown tag ${String(tag)} in a stored value.`);
  }
}
