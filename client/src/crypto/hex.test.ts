import { describe, expect, it } from "vitest";
import { ValidationError } from "../errors.ts";
import { bytesToHex, hexToBytes } from "./hex.ts";

describe("hex", () => {
  it("round trips every byte value", () => {
    const all = Uint8Array.from({ length: 256 }, (_, i) => i);
    const hex = bytesToHex(all);
    expect(hex).toMatch(/^[0-9a-f]{512}$/);
    expect(hexToBytes(hex)).toEqual(all);
  });

  it("accepts upper case", () => {
    expect(hexToBytes("00ABff")).toEqual(new Uint8Array([0, 171, 255]));
  });

  it.each(["abc", "zz", "0g", " 00", "00 "])("rejects %j", (text) => {
    expect(() => hexToBytes(text)).toThrow(ValidationError);
  });
});
