import { describe, expect, it } from "vitest";
import { deriveCommitKey, deriveNonceKey } from "../crypto/keys.ts";
import { sealCommit } from "../crypto/seal.ts";
import { CommitKeys } from "./commit-keys.ts";

const spaceKey = new Uint8Array(32).fill(7);
const device = new Uint8Array(16).fill(3);
const other = new Uint8Array(16).fill(4);

describe("CommitKeys", () => {
  it("derives a device's keys of an epoch once, and the same keys a fresh derivation gives", async () => {
    const keys = new CommitKeys();
    const first = keys.of(spaceKey, device, 0);
    expect(keys.of(spaceKey, device, 0)).toBe(first);
    expect(keys.of(spaceKey, device, 1)).not.toBe(first);
    expect(keys.of(spaceKey, other, 0)).not.toBe(first);
    // Sealing (deterministic with a nonce key) gives the same bytes with the kept keys as with new ones.
    const [key, nonceKey] = await first;
    const aad = new Uint8Array([1, 2, 3]);
    const plain = new TextEncoder().encode("a commit");
    const fresh = await sealCommit(
      await deriveCommitKey(spaceKey, device, 0),
      aad,
      plain,
      await deriveNonceKey(spaceKey, device, 0),
    );
    expect(await sealCommit(key, aad, plain, nonceKey)).toEqual(fresh);
  });

  it("does not keep a derivation that failed", async () => {
    const keys = new CommitKeys();
    const bad = keys.of(new Uint8Array(5), device, 0);
    await expect(bad).rejects.toThrow();
    // Asked again, it is derived again (here from the right key), not answered with the failure.
    const again = keys.of(spaceKey, device, 0);
    expect(again).not.toBe(bad);
    await expect(again).resolves.toHaveLength(2);
  });
});
