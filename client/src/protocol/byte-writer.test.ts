import { describe, expect, it } from "vitest";
import { ByteWriter } from "./byte-writer.ts";

describe("ByteWriter", () => {
  it("finishes with exactly the bytes written, sized up front or grown", () => {
    const exact = new ByteWriter(5);
    exact.u8(1);
    exact.u32(42);
    const grown = new ByteWriter(2);
    grown.u8(1);
    grown.u32(42);
    expect(exact.finish()).toEqual(new Uint8Array([1, 0, 0, 0, 42]));
    expect(grown.finish()).toEqual(new Uint8Array([1, 0, 0, 0, 42]));
  });

  it("never changes what it finished with when written to afterwards", () => {
    const w = new ByteWriter(2);
    w.u16(0x0102);
    const first = w.finish();
    w.u8(3);
    expect(first).toEqual(new Uint8Array([1, 2]));
    expect(w.finish()).toEqual(new Uint8Array([1, 2, 3]));
  });

  it("writes UTF-8 exactly as TextEncoder does, after a u16 or u32 length (seeded)", () => {
    const seed = 20261208;
    let a = seed;
    const random = () => ((a = (a * 1103515245 + 12345) >>> 0) / 2 ** 32);
    // ASCII, two- and three-byte characters, surrogate pairs and lone surrogates (U+FFFD), short and long.
    const units = [0x41, 0x7f, 0x80, 0xe9, 0x7ff, 0x800, 0x4e2d, 0xd83d, 0xde00, 0xdfff, 0xfffd, 0x0];
    const enc = new TextEncoder();
    for (let k = 0; k < 500; k++) {
      const length = k % 10 === 0 ? 60 + Math.floor(random() * 200) : Math.floor(random() * 70);
      let s = "";
      for (let i = 0; i < length; i++)
        s += String.fromCharCode(random() < 0.8 ? 0x20 + Math.floor(random() * 95) : units[Math.floor(random() * units.length)]!);
      const expected = enc.encode(s);
      for (const lengthBytes of [2, 4] as const) {
        const w = new ByteWriter(1);
        w.u8(9);
        expect(w.utf8(s, lengthBytes), `seed ${seed}, string ${k}`).toBe(expected.length);
        const out = w.finish();
        const view = new DataView(out.buffer, out.byteOffset);
        expect(lengthBytes === 2 ? view.getUint16(1) : view.getUint32(1)).toBe(expected.length);
        expect(out.subarray(1 + lengthBytes), `seed ${seed}, string ${k}`).toEqual(expected);
      }
    }
  });

  it("writes nothing for a string longer than its u16 length field can say", () => {
    const w = new ByteWriter(4);
    w.u8(1);
    expect(w.utf8("x".repeat(0x10000), 2)).toBe(0x10000);
    w.u8(2);
    expect(w.finish()).toEqual(new Uint8Array([1, 2]));
  });
});
