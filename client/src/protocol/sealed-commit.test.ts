import { describe, expect, it } from "vitest";
import { ProtocolError } from "../errors.ts";
import { decodeBase64Url, encodeBase64Url } from "./base64url.ts";
import { COMMIT_HEADER_BYTES, encodeCommitHeader, type CommitHeader } from "./commit-header.ts";
import { fromHex, isIdHex, toHex } from "./hex.ts";
import { MAX_COMMIT_BYTES } from "./limits.ts";
import { decodeSealedCommit, encodeSealedCommit, SEALED_COMMIT_OVERHEAD } from "./sealed-commit.ts";
import { offeredSubprotocols, parseOfferedSubprotocols } from "./subprotocol.ts";

const header: CommitHeader = {
  version: 2,
  space: fromHex("5a".repeat(16)),
  device: fromHex("00112233445566778899aabbccddeeff"),
  seq: 2,
  epoch: 7,
  prevHash: fromHex("ab".repeat(32)),
  author: fromHex("cd".repeat(32)),
};
const sig = new Uint8Array(64).fill(0xee);
const body = new Uint8Array(28).map((_, i) => i);

function reason(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof ProtocolError) return e.reason;
    throw e;
  }
  return "accepted";
}

describe("sealed commit", () => {
  it("puts the header bytes (the AAD) first and round-trips", () => {
    const aad = encodeCommitHeader(header);
    expect(aad.length).toBe(COMMIT_HEADER_BYTES);
    const bytes = encodeSealedCommit(header, body, sig);
    expect(bytes.length).toBe(SEALED_COMMIT_OVERHEAD + body.length + 64);
    const d = decodeSealedCommit(bytes);
    expect(d.header).toEqual(header);
    expect(toHex(d.headerBytes)).toBe(toHex(aad));
    expect(toHex(d.body)).toBe(toHex(body));
    expect(toHex(d.signature)).toBe(toHex(sig));
    expect(toHex(d.signed)).toBe(toHex(bytes.subarray(0, bytes.length - 64)));
  });

  it("rejects truncation, trailing bytes, versions and bad fields", () => {
    const bytes = encodeSealedCommit(header, body, sig);
    for (let n = 0; n < bytes.length; n++)
      expect(reason(() => decodeSealedCommit(bytes.subarray(0, n)))).toBe("truncated");
    expect(reason(() => decodeSealedCommit(Uint8Array.of(...bytes, 0)))).toBe("trailing-bytes");
    for (const version of [1, 3]) {
      const other = bytes.slice();
      other[0] = version;
      expect(reason(() => decodeSealedCommit(other))).toBe("unknown-version");
      expect(reason(() => encodeSealedCommit({ ...header, version }, body, sig))).toBe("unknown-version");
    }
    expect(reason(() => encodeSealedCommit({ ...header, author: new Uint8Array(31) }, body, sig))).toBe(
      "bad-field",
    );
    expect(reason(() => encodeSealedCommit(header, body, sig.subarray(1)))).toBe("bad-field");
    expect(reason(() => encodeSealedCommit({ ...header, seq: 1 }, body, sig))).toBe("bad-field");
    expect(reason(() => encodeSealedCommit(header, new Uint8Array(27), sig))).toBe("bad-field");
    expect(reason(() => encodeSealedCommit({ ...header, epoch: -1 }, body, sig))).toBe("bad-field");
    expect(reason(() => encodeSealedCommit(header, new Uint8Array(MAX_COMMIT_BYTES), sig))).toBe("oversized");
    expect(reason(() => decodeSealedCommit(bytes, { maxCommitBytes: bytes.length - 1 }))).toBe("oversized");
  });
});

describe("helpers", () => {
  it("hex round-trips and validates", () => {
    expect(toHex(fromHex("00ff10"))).toBe("00ff10");
    expect(reason(() => fromHex("0"))).toBe("bad-field");
    expect(reason(() => fromHex("zz"))).toBe("bad-field");
    expect(reason(() => fromHex("00", 2))).toBe("bad-field");
    expect(isIdHex("00112233445566778899aabbccddeeff")).toBe(true);
    expect(isIdHex("00112233445566778899AABBCCDDEEFF")).toBe(false);
  });

  it("base64url round-trips every length and rejects non-canonical text", () => {
    for (let n = 0; n < 40; n++) {
      const bytes = new Uint8Array(n).map((_, i) => (i * 37 + n) & 255);
      const text = encodeBase64Url(bytes);
      expect(text).toMatch(/^[A-Za-z0-9_-]*$/);
      expect(toHex(decodeBase64Url(text))).toBe(toHex(bytes));
    }
    expect(encodeBase64Url(Uint8Array.of(251, 255))).toBe("-_8");
    expect(reason(() => decodeBase64Url("-_9"))).toBe("bad-field");
    expect(reason(() => decodeBase64Url("AA=="))).toBe("bad-field");
    expect(reason(() => decodeBase64Url("A"))).toBe("bad-field");
  });

  it("offers and parses the token subprotocol", () => {
    const token = new Uint8Array(32).fill(7);
    const offered = offeredSubprotocols(token);
    expect(offered[0]).toBe("shoal.1");
    const parsed = parseOfferedSubprotocols(offered.join(", "));
    expect(parsed.shoal).toBe(true);
    expect(toHex(parsed.token!)).toBe(toHex(token));
    expect(parseOfferedSubprotocols("shoal.1, shoal-token.!!")).toEqual({ shoal: true, token: undefined });
    expect(parseOfferedSubprotocols(undefined)).toEqual({ shoal: false, token: undefined });
    expect(reason(() => offeredSubprotocols(new Uint8Array(8)))).toBe("bad-field");
  });
});
