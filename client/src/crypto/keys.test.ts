import { createCipheriv, hkdfSync } from "node:crypto";
import { describe, expect, it } from "vitest";
import { ValidationError } from "../errors.ts";
import { deriveCommitKey, deriveRelayToken, randomId16, randomSpaceKey } from "./keys.ts";
import { openCommit, sealCommit } from "./seal.ts";

const text = new TextEncoder();
const aad = text.encode("header");

describe("random values", () => {
  it("makes 32-byte keys and 16-byte ids that differ each time", () => {
    expect(randomSpaceKey()).toHaveLength(32);
    expect(randomId16()).toHaveLength(16);
    expect(randomSpaceKey()).not.toEqual(randomSpaceKey());
    expect(randomId16()).not.toEqual(randomId16());
  });
});

describe("deriveCommitKey", () => {
  it("gives a non-extractable AES-256-GCM key", async () => {
    const key = await deriveCommitKey(randomSpaceKey(), randomId16(), 0);
    expect(key.extractable).toBe(false);
    expect(key.algorithm).toMatchObject({ name: "AES-GCM", length: 256 });
    expect(key.usages.sort()).toEqual(["decrypt", "encrypt"]);
    await expect(crypto.subtle.exportKey("raw", key)).rejects.toThrow();
  });

  it("is deterministic: another device holding the space key derives the same key", async () => {
    const spaceKey = randomSpaceKey();
    const device = randomId16();
    const sealed = await sealCommit(await deriveCommitKey(spaceKey, device, 3), aad, text.encode("hi"));
    // Copies, so the cache cannot be what makes them equal.
    const again = await deriveCommitKey(spaceKey.slice(), device.slice(), 3);
    expect(await openCommit(again, aad, sealed)).toEqual(text.encode("hi"));
  });

  it("differs per device, per epoch and per space key", async () => {
    const spaceKey = randomSpaceKey();
    const device = randomId16();
    const sealed = await sealCommit(await deriveCommitKey(spaceKey, device, 0), aad, text.encode("x"));
    const others = [
      await deriveCommitKey(spaceKey, randomId16(), 0),
      await deriveCommitKey(spaceKey, device, 1),
      await deriveCommitKey(randomSpaceKey(), device, 0),
    ];
    for (const other of others) await expect(openCommit(other, aad, sealed)).rejects.toThrow();
  });

  it("follows the documented HKDF layout (cross-checked with node:crypto)", async () => {
    const spaceKey = randomSpaceKey();
    const device = randomId16();
    const info = Buffer.concat([Buffer.from("shoal/v1/commit-key\0"), device, Buffer.from([0, 0, 1, 2])]);
    const raw = Buffer.from(hkdfSync("sha256", spaceKey, Buffer.alloc(0), info, 32));
    // Seal by hand with Node's own AES-GCM, then open with the WebCrypto-derived key.
    const nonce = randomId16().subarray(0, 12);
    const cipher = createCipheriv("aes-256-gcm", raw, nonce).setAAD(aad);
    const frame = new Uint8Array(256);
    frame.set([0, 0, 0, 2, 0x68, 0x69]);
    const body = Buffer.concat([nonce, cipher.update(frame), cipher.final(), cipher.getAuthTag()]);
    const key = await deriveCommitKey(spaceKey, device, 258);
    expect(await openCommit(key, aad, body)).toEqual(text.encode("hi"));
  });

  it("returns the cached key for the same inputs", async () => {
    const spaceKey = randomSpaceKey();
    const device = randomId16();
    expect(await deriveCommitKey(spaceKey, device, 0)).toBe(
      await deriveCommitKey(spaceKey.slice(), device, 0),
    );
  });

  it("keeps working past the cache bound", async () => {
    const spaceKey = randomSpaceKey();
    const first = randomId16();
    const sealed = await sealCommit(await deriveCommitKey(spaceKey, first, 0), aad, text.encode("x"));
    for (let i = 0; i < 100; i++) await deriveCommitKey(spaceKey, randomId16(), 0);
    expect(await openCommit(await deriveCommitKey(spaceKey, first, 0), aad, sealed)).toEqual(
      text.encode("x"),
    );
  });

  it.each([
    ["a short space key", new Uint8Array(31), new Uint8Array(16), 0],
    ["a long device id", new Uint8Array(32), new Uint8Array(17), 0],
    ["a negative epoch", new Uint8Array(32), new Uint8Array(16), -1],
    ["a fractional epoch", new Uint8Array(32), new Uint8Array(16), 0.5],
    ["an epoch past 32 bits", new Uint8Array(32), new Uint8Array(16), 2 ** 32],
  ])("rejects %s", async (_, spaceKey, device, epoch) => {
    await expect(deriveCommitKey(spaceKey, device, epoch)).rejects.toThrow(ValidationError);
  });
});

describe("deriveRelayToken", () => {
  it("is 43 URL-safe characters, deterministic for a key and space", async () => {
    const spaceKey = randomSpaceKey();
    const spaceId = randomId16();
    const token = await deriveRelayToken(spaceKey, spaceId);
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(await deriveRelayToken(spaceKey.slice(), spaceId.slice())).toBe(token);
  });

  it("differs per space and per key", async () => {
    const spaceKey = randomSpaceKey();
    const spaceId = randomId16();
    const token = await deriveRelayToken(spaceKey, spaceId);
    expect(await deriveRelayToken(spaceKey, randomId16())).not.toBe(token);
    expect(await deriveRelayToken(randomSpaceKey(), spaceId)).not.toBe(token);
  });

  // The expected value was computed independently with node:crypto hkdfSync (see the commit-key test).
  it("matches a fixed vector, so a change to the derivation cannot slip through", async () => {
    const spaceKey = Uint8Array.from({ length: 32 }, (_, i) => i);
    const spaceId = Uint8Array.from({ length: 16 }, (_, i) => 0xf0 + i);
    expect(await deriveRelayToken(spaceKey, spaceId)).toBe("BMqa1EAZbtxxO8vYBfzPObC36jTVV4sOd3PeCOXZ5GY");
  });

  it("rejects ids and keys of the wrong size", async () => {
    await expect(deriveRelayToken(new Uint8Array(32), new Uint8Array(15))).rejects.toThrow(ValidationError);
    await expect(deriveRelayToken(new Uint8Array(16), new Uint8Array(16))).rejects.toThrow(ValidationError);
  });
});
