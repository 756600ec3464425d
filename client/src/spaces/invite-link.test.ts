import { describe, expect, it } from "vitest";
import { InvalidInvitation, ValidationError } from "../errors.ts";
import { bytesToBase64url } from "../crypto/base64url.ts";
import { bytesToHex } from "../crypto/hex.ts";
import { randomId16, randomSpaceKey } from "../crypto/keys.ts";
import { formatInviteLink, parseInviteLink } from "./invite-link.ts";

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

function newSpace(name?: string) {
  return { id: bytesToHex(randomId16()), key: randomSpaceKey(), ...(name === undefined ? {} : { name }) };
}

function fragmentOf(link: string): string {
  return link.slice(link.indexOf("#") + 1);
}

describe("formatInviteLink", () => {
  it("puts id, key and check only in the fragment", () => {
    const space = newSpace();
    const link = formatInviteLink("https://clinic.example/app?tab=1", space);
    const url = new URL(link);
    expect(url.origin + url.pathname + url.search).toBe("https://clinic.example/app?tab=1");
    expect(url.hash).toMatch(/^#join=[0-9a-f]{32}\.[A-Za-z0-9_-]{43}\.[A-Za-z0-9_-]{6}$/);
    expect(url.hash).toContain(bytesToBase64url(space.key));
  });

  it("replaces a fragment already on the base", () => {
    const link = formatInviteLink("https://a.example/#/patients", newSpace());
    expect(link.split("#")).toHaveLength(2);
    expect(link).toMatch(/^https:\/\/a\.example\/#join=/);
  });

  it("rejects a bad id, a short key or a long name", () => {
    expect(() => formatInviteLink("https://a/", { id: "abc", key: randomSpaceKey() })).toThrow(
      ValidationError,
    );
    expect(() => formatInviteLink("https://a/", { id: "0".repeat(32), key: new Uint8Array(16) })).toThrow(
      ValidationError,
    );
    expect(() => formatInviteLink("https://a/", { ...newSpace(), name: "x".repeat(201) })).toThrow(
      ValidationError,
    );
  });
});

describe("parseInviteLink", () => {
  it("round trips a full URL", () => {
    const space = newSpace();
    const parsed = parseInviteLink(formatInviteLink("https://clinic.example/app", space));
    expect(parsed).toEqual({ spaceId: space.id, key: space.key });
    expect("name" in parsed).toBe(false);
  });

  it("round trips a name with spaces, punctuation and non-ASCII", () => {
    const space = newSpace("Clinique du Nord & Sud #2 / 北 = 100%");
    const link = formatInviteLink("https://clinic.example/", space);
    expect(fragmentOf(link).split("&")).toHaveLength(2);
    expect(parseInviteLink(link)).toEqual({ spaceId: space.id, key: space.key, name: space.name });
  });

  it("accepts the fragment alone, with or without '#', and surrounding whitespace", () => {
    const space = newSpace("North");
    const fragment = fragmentOf(formatInviteLink("https://x/", space));
    const expected = { spaceId: space.id, key: space.key, name: "North" };
    expect(parseInviteLink(fragment)).toEqual(expected);
    expect(parseInviteLink(`#${fragment}`)).toEqual(expected);
    expect(parseInviteLink(`  https://x/#${fragment}\n`)).toEqual(expected);
  });

  it("accepts an upper-case space id and returns it in lower case", () => {
    const space = newSpace();
    const link = formatInviteLink("https://x/", { ...space, id: space.id.toUpperCase() });
    expect(link).toContain(`#join=${space.id}.`);
    expect(parseInviteLink(link.replace(space.id, space.id.toUpperCase())).spaceId).toBe(space.id);
  });

  const space = newSpace();
  const good = formatInviteLink("https://x/app", space);
  const [id, key, check] = fragmentOf(good).slice("join=".length).split(".") as [string, string, string];
  const shortKey = bytesToBase64url(space.key.subarray(0, 31));

  it.each([
    ["no fragment", "https://x/app", /'#join=' is missing/],
    ["an empty fragment", "https://x/app#", /'#join=' is missing/],
    ["another fragment", "https://x/app#/patients", /'#join=' is missing/],
    ["the payload in the query", `https://x/app?join=${id}.${key}.${check}`, /'#join=' is missing/],
    ["an empty string", "", /'#join=' is missing/],
    ["no check", `#join=${id}.${key}`, /incomplete/],
    ["only an id", `#join=${id}`, /incomplete/],
    ["a short space id", `#join=${id.slice(1)}.${key}.${check}`, /space id/],
    ["a non-hex space id", `#join=${id.slice(1)}g.${key}.${check}`, /space id/],
    ["a 31-byte key", `#join=${id}.${shortKey}.${check}`, /31 bytes long instead of 32/],
    ["a 33-byte key", `#join=${id}.${key}A.${check}`, /33 bytes long instead of 32/],
    ["a key in standard base64", `#join=${id}.${key.slice(0, -1)}+.${check}`, /key contains characters/],
    ["a key with padding", `#join=${id}.${key}=.${check}`, /key contains characters/],
    ["a key with an impossible length", `#join=${id}.${key}AA.${check}`, /key contains characters/],
    // Always a different last character (the random check may already end in "A").
    [
      "a bad check",
      `#join=${id}.${key}.${check.slice(0, -1)}${check.endsWith("A") ? "Q" : "A"}`,
      /checksum|characters/,
    ],
    ["a check of the wrong size", `#join=${id}.${key}.${check}AA`, /checksum/],
    ["an extra dotted part", `#join=${id}.${key}.${check}.x`, /unexpected text/],
    ["an unknown parameter", `#join=${id}.${key}.${check}&admin=1`, /unexpected text/],
    ["two names", `#join=${id}.${key}.${check}&name=a&name=b`, /unexpected text/],
    ["trailing garbage", `#join=${id}.${key}.${check}xyz`, /checksum|characters/],
    ["a broken percent escape in the name", `#join=${id}.${key}.${check}&name=%E0%A4%A`, /name/],
    ["a name over 200 characters", `#join=${id}.${key}.${check}&name=${"n".repeat(201)}`, /name/],
  ])("rejects %s", (_, link, message) => {
    expect(() => parseInviteLink(link)).toThrow(InvalidInvitation);
    expect(() => parseInviteLink(link)).toThrow(message);
  });

  it("catches every single-character change in the key, id or check", () => {
    const fragment = fragmentOf(good);
    const start = "join=".length;
    let tried = 0;
    for (let i = start; i < fragment.length; i++) {
      const c = fragment[i]!;
      if (c === ".") continue;
      const isHex = i < start + 32;
      for (const replacement of isHex ? "0123456789abcdef" : ALPHABET) {
        if (replacement === c) continue;
        const corrupted = fragment.slice(0, i) + replacement + fragment.slice(i + 1);
        expect(() => parseInviteLink(corrupted), corrupted).toThrow(InvalidInvitation);
        tried++;
      }
    }
    expect(tried).toBeGreaterThan(3000);
  });

  it("catches two swapped neighbouring characters in the key", () => {
    const fragment = fragmentOf(good);
    const keyAt = "join=".length + 33;
    for (let i = keyAt; i < keyAt + 42; i++) {
      if (fragment[i] === fragment[i + 1]) continue;
      const swapped = fragment.slice(0, i) + fragment[i + 1] + fragment[i] + fragment.slice(i + 2);
      expect(() => parseInviteLink(swapped)).toThrow(InvalidInvitation);
    }
  });

  it("says a changed key character was caught by the checksum", () => {
    const k = key[10] === "A" ? "B" : "A";
    const corrupted = `#join=${id}.${key.slice(0, 10)}${k}${key.slice(11)}.${check}`;
    expect(() => parseInviteLink(corrupted)).toThrow(/does not match its checksum/);
  });
});

describe("invitation links with a space claim", () => {
  const claim = () => Uint8Array.from({ length: 112 }, (_, i) => (i * 37 + 11) & 255);

  it("round trips the claim after the name, and without a name", () => {
    const space = { ...newSpace("North Clinic"), claim: claim() };
    const link = formatInviteLink("https://clinic.example/app", space);
    expect(fragmentOf(link)).toMatch(/&name=North%20Clinic&claim=[A-Za-z0-9_-]{150}$/);
    const parsed = parseInviteLink(link);
    expect(parsed).toEqual({ spaceId: space.id, key: space.key, name: "North Clinic", claim: space.claim });
    const bare = { ...newSpace(), claim: claim() };
    expect(parseInviteLink(formatInviteLink("https://a/", bare)).claim).toEqual(bare.claim);
  });

  it("still reads links made before claims, which carry none", () => {
    const space = newSpace("Old");
    const parsed = parseInviteLink(formatInviteLink("https://a/", space));
    expect(parsed.claim).toBeUndefined();
    expect("claim" in parsed).toBe(false);
  });

  it("refuses a claim of the wrong length, an unreadable one, a repeated or misplaced parameter", () => {
    const space = newSpace("N");
    const link = formatInviteLink("https://a/", space);
    const full = encodeClaim(claim());
    expect(() => parseInviteLink(`${link}&claim=${full.slice(0, 100)}`)).toThrow(/claim is 75 bytes long/);
    expect(() => parseInviteLink(`${link}&claim=${full.slice(0, 149)}!`)).toThrow(InvalidInvitation);
    expect(() => parseInviteLink(`${link}&claim=${full}&claim=${full}`)).toThrow(InvalidInvitation);
    const withoutName = formatInviteLink("https://a/", newSpace());
    expect(() => parseInviteLink(`${withoutName}&claim=${full}&name=N`)).toThrow(InvalidInvitation);
    expect(() => formatInviteLink("https://a/", { ...space, claim: new Uint8Array(111) })).toThrow(
      ValidationError,
    );
  });
});

function encodeClaim(bytes: Uint8Array): string {
  return bytesToBase64url(bytes);
}
