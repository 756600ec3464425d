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
});
