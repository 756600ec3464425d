import { describe, expect, it } from "vitest";
import { ValidationError } from "../errors.ts";
import { decodeValue, encodeValue } from "./value-codec.ts";

describe("value codec (what a locked database encrypts)", () => {
  it("round-trips what IndexedDB stores", () => {
    const value = {
      s: "héllo ✓",
      n: -1.5,
      big: 12345678901234567890n,
      t: true,
      f: false,
      nul: null,
      und: undefined,
      bytes: new Uint8Array([0, 1, 255]),
      list: [1, "two", [3], { four: 4 }],
      nested: { deep: { deeper: "x" } },
      when: new Date(1_700_000_000_000),
      ["__proto__"]: "a plain key",
    };
    const back = decodeValue(encodeValue(value)) as Record<string, unknown>;
    expect(back).toEqual(value);
    expect(Object.getPrototypeOf(back)).toBe(Object.prototype);
    expect(Object.keys(back)).toContain("__proto__");
    const buf = decodeValue(encodeValue(new Uint8Array([7, 8]).buffer));
    expect(new Uint8Array(buf as ArrayBuffer)).toEqual(new Uint8Array([7, 8]));
  });

  it("refuses what it cannot encrypt, and bytes it did not make", () => {
    expect(() => encodeValue({ m: new Map() })).toThrow(ValidationError);
    expect(() => encodeValue(() => 1)).toThrow(ValidationError);
    expect(() => decodeValue(new Uint8Array([99]))).toThrow(RangeError);
    expect(() => decodeValue(new Uint8Array([5, 0, 0, 0, 9, 1]))).toThrow(RangeError);
  });
});
