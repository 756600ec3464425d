import { describe, expect, it } from "vitest";
import { encodeBase64Url } from "@shoal/client/protocol";
import { AddressRates } from "./address-rates.ts";
import { offeredToken, originAllowed, parseTokenText } from "./auth.ts";
import { ByteRate } from "./byte-rate.ts";
import { DEFAULT_RELAY_LIMITS, resolveRelayLimits } from "./limits.ts";
import { CappedStore } from "./store/capped-store.ts";
import { incomingCommit } from "./store/incoming-commit.ts";
import { makeChain, randomId, testDevice } from "./store/commit-fixtures.ts";
import { MemoryStore } from "./store/memory-store.ts";
import { UploadBudget } from "./upload-budget.ts";

describe("resolveRelayLimits", () => {
  it("refuses 0, negatives, fractions and unknown keys, naming the limit", () => {
    expect(() => resolveRelayLimits({ maxFrameBytes: 0 })).toThrow(
      /maxFrameBytes must be a positive integer/,
    );
    expect(() => resolveRelayLimits({ maxConnections: -1 })).toThrow(/maxConnections/);
    expect(() => resolveRelayLimits({ idleTimeoutMs: 1.5 })).toThrow(/idleTimeoutMs/);
    expect(() => resolveRelayLimits({ nope: 1 } as never)).toThrow(/Unknown relay limit nope/);
    expect(() => resolveRelayLimits({ maxFrameBytes: 1000 })).toThrow(/65536 to 1048576/);
    expect(() => resolveRelayLimits({ headersTimeoutMs: 5000, requestTimeoutMs: 1000 })).toThrow(
      /headersTimeoutMs/,
    );
    expect(resolveRelayLimits({ maxSpaces: undefined }).maxSpaces).toBe(DEFAULT_RELAY_LIMITS.maxSpaces);
  });
});

describe("parseTokenText", () => {
  it("reads any base64url text of 16 to 64 bytes the same whatever the spare bits of its last character", () => {
    const token = new Uint8Array(32).fill(7);
    const text = encodeBase64Url(token);
    expect(parseTokenText(text)).toEqual(token);
    // 43 characters: the last one carries 2 spare bits; all four variants are the same token.
    const base = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".indexOf(text.at(-1)!);
    for (let spare = 0; spare < 4; spare++) {
      const variant =
        text.slice(0, -1) + "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[base | spare];
      expect(parseTokenText(variant)).toEqual(token);
    }
    expect(parseTokenText("A".repeat(20))).toBeUndefined(); // 15 bytes
    expect(parseTokenText("A".repeat(87))).toBeUndefined(); // 65 bytes
    expect(parseTokenText("A".repeat(21))).toBeUndefined(); // length 1 mod 4
    expect(parseTokenText("A".repeat(42) + "=")).toBeUndefined();
    expect(offeredToken(`shoal.1, shoal-token.${text}`)).toEqual(token);
    expect(offeredToken("shoal.1")).toBeUndefined();
  });
});

describe("originAllowed", () => {
  it("matches self against the Host header, * against anything, and lists exactly", () => {
    expect(originAllowed(["self"], "http://127.0.0.1:8787", "127.0.0.1:8787")).toBe(true);
    expect(originAllowed(["self"], "https://clinic.example", "clinic.example")).toBe(true);
    expect(originAllowed(["self"], "http://evil.example", "127.0.0.1:8787")).toBe(false);
    expect(originAllowed(["self"], "null", "127.0.0.1:8787")).toBe(false);
    expect(originAllowed(["self"], undefined, "127.0.0.1:8787")).toBe(true);
    expect(originAllowed(["*"], "http://any.example", "x")).toBe(true);
    expect(originAllowed(["https://a.example"], "https://a.example", "x")).toBe(true);
    expect(originAllowed(undefined, "http://evil.example", "x")).toBe(true);
  });
});

describe("ByteRate, AddressRates, UploadBudget", () => {
  it("ByteRate lets a burst through, then asks for the time the debt takes to refill", () => {
    let now = 0;
    const rate = new ByteRate(1000, 2000, () => now);
    expect(rate.take(2000)).toBe(0);
    expect(rate.take(500)).toBe(500);
    now += 500;
    expect(rate.take(0)).toBe(0);
  });

  it("AddressRates counts per address and refills over the hour", () => {
    let now = 0;
    const rates = new AddressRates(2, () => now);
    expect([rates.take("a"), rates.take("a"), rates.take("a"), rates.take("b")]).toEqual([
      true,
      true,
      false,
      true,
    ]);
    now += 1_800_000;
    expect(rates.take("a")).toBe(true);
  });

  it("UploadBudget never reserves past its cap", () => {
    const budget = new UploadBudget(10);
    expect(budget.reserve(6)).toBe(true);
    expect(budget.reserve(5)).toBe(false);
    budget.release(6);
    expect(budget.reserve(10)).toBe(true);
    expect(budget.used).toBe(10);
  });
});

describe("CappedStore", () => {
  it("refuses past the store-wide cap as store-full, duplicates free, and the space quota stays quota", async () => {
    const store = new CappedStore(new MemoryStore(), 1000);
    const a = randomId();
    const b = randomId();
    await store.registerSpace(a, new Uint8Array(32));
    await store.registerSpace(b, new Uint8Array(32));
    const chainA = makeChain(a, testDevice(), 3, { bodyBytes: 300 }).map((c) => incomingCommit(c));
    const r = await store.append(a, chainA, { quotaBytes: 1 << 20 });
    expect(r.stored.length).toBe(2);
    expect(r.refused?.code).toBe("store-full");
    expect((await store.append(a, chainA.slice(0, 2), { quotaBytes: 1 << 20 })).duplicates).toBe(2);
    const chainB = makeChain(b, testDevice(), 1, { bodyBytes: 300 }).map((c) => incomingCommit(c));
    expect((await store.append(b, chainB, { quotaBytes: 1 << 20 })).refused?.code).toBe("store-full");
    expect((await store.append(b, chainB, { quotaBytes: 10 })).refused?.code).toBe("quota");
    expect(await store.putSnapshot(b, new Map(), new Uint8Array(600), { quotaBytes: 1 << 20 })).toBe(
      "store-full",
    );
    expect((await store.totals()).spaces).toBe(2);
  });

  it("reads a space's usage only when the store-wide room is smaller than the space's quota", async () => {
    const inner = new MemoryStore();
    let usageReads = 0;
    const usage = inner.usage.bind(inner);
    inner.usage = (space) => {
      usageReads += 1;
      return usage(space);
    };
    const space = randomId();
    await inner.registerSpace(space, new Uint8Array(32));
    const chain = makeChain(space, testDevice(), 3, { bodyBytes: 300 }).map((c) => incomingCommit(c));
    const roomy = new CappedStore(inner, 1 << 30);
    expect((await roomy.append(space, chain.slice(0, 1), { quotaBytes: 1 << 20 })).stored.length).toBe(1);
    // The space quota still binds without the read.
    expect((await roomy.append(space, chain.slice(1), { quotaBytes: 10 })).refused?.code).toBe("quota");
    expect(usageReads).toBe(0);
    const tight = new CappedStore(inner, 1000);
    expect((await tight.append(space, chain.slice(1), { quotaBytes: 1 << 20 })).refused?.code).toBe(
      "store-full",
    );
    expect(usageReads).toBe(1);
  });
});
