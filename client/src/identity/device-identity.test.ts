import { describe, expect, it } from "vitest";
import { deviceIdOf, generateIdentity } from "./device-identity.ts";
import { identityFromSeed } from "./identity-from-seed.ts";
import { SIGNING_LABELS, signBytes, verifyBytes } from "./signing.ts";

describe("device identity", () => {
  it("binds the device id to the signing key and signs with a key it cannot export", async () => {
    const id = await generateIdentity();
    expect(id.device).toBe(await deviceIdOf(id.signingPublic));
    expect(id.device).toMatch(/^[0-9a-f]{32}$/);
    expect(id.signingPublic.length).toBe(32);
    expect(id.agreementPublic.length).toBe(32);
    expect(id.signingKey.extractable).toBe(false);
    expect(id.agreementKey.extractable).toBe(false);
    const sig = await signBytes(id.signingKey, SIGNING_LABELS.commit, new Uint8Array([1]));
    expect(await verifyBytes(id.signingPublic, SIGNING_LABELS.commit, new Uint8Array([1]), sig)).toBe(true);
    // Survives the structured clone IndexedDB applies when it stores the keys.
    const cloned = structuredClone(id);
    const again = await signBytes(cloned.signingKey, SIGNING_LABELS.commit, new Uint8Array([1]));
    expect(again).toEqual(sig);
  });

  it("derives the same identity from the same seed, and another from another seed", async () => {
    const a = await identityFromSeed(new Uint8Array(32).fill(1));
    const b = await identityFromSeed(new Uint8Array(32).fill(1));
    const c = await identityFromSeed(new Uint8Array(32).fill(2));
    expect(a.device).toBe(b.device);
    expect(a.signingPublic).toEqual(b.signingPublic);
    expect(a.agreementPublic).toEqual(b.agreementPublic);
    expect(c.device).not.toBe(a.device);
    expect(a.signingKey.extractable).toBe(false);
    const sig = await signBytes(a.signingKey, SIGNING_LABELS.commit, new Uint8Array([9]));
    expect(await verifyBytes(b.signingPublic, SIGNING_LABELS.commit, new Uint8Array([9]), sig)).toBe(true);
  });
});
