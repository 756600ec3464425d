import { describe, expect, it } from "vitest";
import { qrCode } from "./qr-code.ts";
import { reedSolomon } from "./reed-solomon.ts";

/** Where format bit i (0 = least significant) sits in each copy, as [row, column] (section 7.9.1). */
function formatCells(size: number, i: number): [[number, number], [number, number]] {
  const first: [number, number] =
    i <= 5 ? [i, 8] : i === 6 ? [7, 8] : i === 7 ? [8, 8] : i === 8 ? [8, 7] : [8, 14 - i];
  const second: [number, number] = i < 8 ? [8, size - 1 - i] : [size - 15 + i, 8];
  return [first, second];
}

/** The 15 format bits of one copy (0: around the top-left finder, 1: split between the other two). */
function formatBits(m: boolean[][], copy: 0 | 1): number {
  let bits = 0;
  for (let i = 14; i >= 0; i--) {
    const [row, column] = formatCells(m.length, i)[copy];
    bits = (bits << 1) | (m[row]![column] ? 1 : 0);
  }
  return bits;
}

describe("qrCode", () => {
  it("computes the error correction of the standard's worked example (ISO/IEC 18004 Annex I, 1-M)", () => {
    const data = [
      0x10, 0x20, 0x0c, 0x56, 0x61, 0x80, 0xec, 0x11, 0xec, 0x11, 0xec, 0x11, 0xec, 0x11, 0xec, 0x11,
    ];
    expect(reedSolomon(data, 10)).toEqual([0xa5, 0x24, 0xd4, 0xc1, 0xed, 0x36, 0xc7, 0x87, 0x2c, 0x55]);
  });

  it("picks the smallest version that holds the text at level M", () => {
    expect(qrCode("HELLO")).toHaveLength(21); // version 1: up to 14 bytes
    expect(qrCode("x".repeat(14))).toHaveLength(21);
    expect(qrCode("x".repeat(15))).toHaveLength(25);
    // An invitation link of the demo: about 330 characters, version 13.
    expect(qrCode("h".repeat(330))).toHaveLength(13 * 4 + 17);
    expect(() => qrCode("x".repeat(2400))).toThrow(RangeError);
  });

  it("draws the finder patterns, the timing patterns and the dark module", () => {
    const m = qrCode("https://clinic.example/#invite=abc");
    const size = m.length;
    for (const [ox, oy] of [
      [0, 0],
      [size - 7, 0],
      [0, size - 7],
    ] as const)
      for (let y = 0; y < 7; y++)
        for (let x = 0; x < 7; x++) {
          const ring = Math.max(Math.abs(x - 3), Math.abs(y - 3));
          expect(m[oy + y]![ox + x]).toBe(ring !== 2);
        }
    for (let i = 8; i < size - 8; i++) {
      expect(m[6]![i]).toBe(i % 2 === 0);
      expect(m[i]![6]).toBe(i % 2 === 0);
    }
    expect(m[size - 8]![8]).toBe(true);
  });

  it("writes both copies of valid format information for level M", () => {
    for (const text of ["a", "b".repeat(100), "Ünïcödé clinic"]) {
      const m = qrCode(text);
      const bits = formatBits(m, 0);
      expect(formatBits(m, 1)).toBe(bits);
      const unmasked = bits ^ 0x5412;
      expect(unmasked >>> 13).toBe(0); // level M is 00
      // A BCH(15,5) codeword: the generator 0x537 divides it.
      let rest = unmasked;
      for (let i = 14; i >= 10; i--) if ((rest >>> i) & 1) rest ^= 0x537 << (i - 10);
      expect(rest).toBe(0);
    }
  });
});
