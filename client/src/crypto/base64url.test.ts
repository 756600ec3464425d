import { describe, expect, it } from "vitest";
import { ValidationError } from "../errors.ts";
import { base64urlToBytes, bytesToBase64url } from "./base64url.ts";

describe("base64url", () => {
  it("matches RFC 4648 test vectors, unpadded and URL-safe", () => {
    const vectors: Array<[string, string]> = [
      ["", ""],
      ["f", "Zg"],
      ["fo", "Zm8"],
      ["foo", "Zm9v"],
      ["foob", "Zm9vYg"],
      ["fooba", "Zm9vYmE"],
      ["foobar", "Zm9vYmFy"],
    ];
    for (const [plain, encoded] of vectors) {
      const bytes = new TextEncoder().encode(plain);
      expect(bytesToBase64url(bytes)).toBe(encoded);
      expect(base64urlToBytes(encoded)).toEqual(bytes);
    }
    expect(bytesToBase64url(new Uint8Array([251, 255, 191]))).toBe("-_-_");
  });

  it("round trips random bytes of every length up to 64 and agrees with Node's encoder", () => {
    for (let n = 0; n <= 64; n++) {
      const bytes = crypto.getRandomValues(new Uint8Array(n));
      const text = bytesToBase64url(bytes);
      expect(text).toBe(Buffer.from(bytes).toString("base64url"));
      expect(base64urlToBytes(text)).toEqual(bytes);
    }
  });

  it.each([
    ["padding", "Zg=="],
    ["standard alphabet", "+/8"],
    ["whitespace", "Zm 9v"],
    ["impossible length", "Zm9vY"],
    ["stray bits in the last character", "Zh"],
    ["non-ASCII", "Zm9é"],
  ])("rejects %s", (_, text) => {
    expect(() => base64urlToBytes(text)).toThrow(ValidationError);
  });
});
