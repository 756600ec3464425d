import { describe, expect, it } from "vitest";
import { DecryptError, ValidationError } from "../errors.ts";
import { pad, paddedSize, unpad } from "./padding.ts";

describe("paddedSize", () => {
  it.each([
    [0, 256],
    [252, 256],
    [253, 512],
    [508, 512],
    [509, 1024],
    [65_532, 65_536],
    [65_533, 131_072],
    [131_068, 131_072],
    [131_069, 196_608],
    [1_000_000, 1_048_576],
  ])("%d bytes -> %d", (length, size) => {
    expect(paddedSize(length)).toBe(size);
  });

  it("has only 9 buckets up to 64 KiB", () => {
    const sizes = new Set<number>();
    for (let n = 0; n <= 65_532; n += 7) sizes.add(paddedSize(n));
    expect([...sizes]).toEqual([256, 512, 1024, 2048, 4096, 8192, 16_384, 32_768, 65_536]);
  });

  it.each([-1, 1.5, Number.NaN, 2 ** 32])("rejects %d", (length) => {
    expect(() => paddedSize(length)).toThrow(ValidationError);
  });
});

describe("pad / unpad", () => {
  it("round trips, including empty and bucket-edge lengths", () => {
    for (const n of [0, 1, 252, 253, 5000, 65_533]) {
      const bytes = crypto.getRandomValues(new Uint8Array(Math.min(n, 65_536)));
      const padded = pad(bytes);
      expect(padded.length).toBe(paddedSize(n));
      expect(unpad(padded)).toEqual(bytes);
    }
  });

  it("rejects frames pad could not have produced", () => {
    const good = pad(new Uint8Array([1, 2, 3]));
    const nonZero = good.slice();
    nonZero[200] = 1;
    const tooLong = good.slice();
    new DataView(tooLong.buffer).setUint32(0, 300);
    const wrongBucket = pad(new Uint8Array(300)).slice(0, 384);
    new DataView(wrongBucket.buffer).setUint32(0, 3);
    for (const frame of [nonZero, tooLong, wrongBucket, good.slice(0, 100), new Uint8Array(0)]) {
      expect(() => unpad(frame)).toThrow(DecryptError);
    }
  });

  it("reads a frame that sits at an offset inside a larger buffer", () => {
    const padded = pad(new Uint8Array([9, 8, 7]));
    const big = new Uint8Array(padded.length + 5);
    big.set(padded, 5);
    expect(unpad(big.subarray(5))).toEqual(new Uint8Array([9, 8, 7]));
  });
});
