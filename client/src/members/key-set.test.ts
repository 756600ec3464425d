import { describe, expect, it } from "vitest";
import { identityFromSeed } from "../identity/identity-from-seed.ts";
import { DecryptError } from "../errors.ts";
import { openKeySet, openName, sealKeySet, sealName, type KeySet } from "./key-set.ts";

const space = "5a".repeat(16);
const seed = (n: number) => new Uint8Array(32).fill(n);

describe("key sets sealed to X25519 keys", () => {
  it("open with the recipient's key only", async () => {
    const [alice, bob] = await Promise.all([identityFromSeed(seed(1)), identityFromSeed(seed(2))]);
    const keys: KeySet = new Map([
      [0, new Uint8Array(32).fill(9)],
      [77, new Uint8Array(32).fill(8)],
    ]);
    const sealed = await sealKeySet(keys, alice.agreementPublic);
    expect(await openKeySet(sealed, alice.agreementKey, alice.agreementPublic)).toEqual(keys);
    await expect(openKeySet(sealed, bob.agreementKey, bob.agreementPublic)).rejects.toBeInstanceOf(
      DecryptError,
    );
    const flipped = sealed.slice(0, 80) + (sealed[80] === "0" ? "1" : "0") + sealed.slice(81);
    await expect(openKeySet(flipped, alice.agreementKey, alice.agreementPublic)).rejects.toBeInstanceOf(
      DecryptError,
    );
  });

  it("names open with the epoch's key, and anything else reads as unknown", async () => {
    const keys: KeySet = new Map([[3, new Uint8Array(32).fill(5)]]);
    const sealed = await sealName("Dr. Ada Lovelace", keys, 3, space);
    expect(sealed).not.toContain("Ada");
    expect(await openName(sealed, keys, space)).toBe("Dr. Ada Lovelace");
    expect(await openName(sealed, new Map([[3, new Uint8Array(32)]]), space)).toBeUndefined();
    expect(await openName("Mallory in clear", keys, space)).toBeUndefined();
    expect(await openName("3.!!!", keys, space)).toBeUndefined();
  });
});
