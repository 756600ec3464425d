import { describe, expect, it } from "vitest";
import { SIGNING_LABELS, signBytes, verifyBytes } from "./signing.ts";

async function pair(): Promise<CryptoKeyPair> {
  return (await crypto.subtle.generateKey({ name: "Ed25519" }, false, ["sign", "verify"])) as CryptoKeyPair;
}

describe("signBytes / verifyBytes", () => {
  it("verifies its own signature, deterministically, under the raw public key too", async () => {
    const k = await pair();
    const bytes = new Uint8Array([1, 2, 3]);
    const a = await signBytes(k.privateKey, SIGNING_LABELS.commit, bytes);
    const b = await signBytes(k.privateKey, SIGNING_LABELS.commit, bytes);
    expect(a).toEqual(b);
    const raw = new Uint8Array(await crypto.subtle.exportKey("raw", k.publicKey));
    expect(await verifyBytes(raw, SIGNING_LABELS.commit, bytes, a)).toBe(true);
    expect(await verifyBytes(k.publicKey, SIGNING_LABELS.commit, bytes, a)).toBe(true);
  });

  it("refuses other bytes, another label, another key and malformed input without throwing", async () => {
    const k = await pair();
    const other = await pair();
    const bytes = new Uint8Array([1, 2, 3]);
    const sig = await signBytes(k.privateKey, SIGNING_LABELS.commit, bytes);
    expect(await verifyBytes(k.publicKey, SIGNING_LABELS.commit, new Uint8Array([1, 2, 4]), sig)).toBe(false);
    expect(await verifyBytes(k.publicKey, SIGNING_LABELS.relayAuth, bytes, sig)).toBe(false);
    expect(await verifyBytes(other.publicKey, SIGNING_LABELS.commit, bytes, sig)).toBe(false);
    expect(await verifyBytes(new Uint8Array(5), SIGNING_LABELS.commit, bytes, sig)).toBe(false);
    expect(await verifyBytes(k.publicKey, SIGNING_LABELS.commit, bytes, sig.subarray(1))).toBe(false);
  });
});
