import { describe, expect, it } from "vitest";
import { bytesToHex } from "./hex.ts";
import { sha256 } from "./sha256.ts";

describe("sha256", () => {
  it("matches the FIPS 180-2 'abc' vector", async () => {
    expect(bytesToHex(await sha256(new TextEncoder().encode("abc")))).toBe(
      "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
    );
  });
});
