import { describe, expect, it } from "vitest";
import { deriveRelayToken } from "../crypto/keys.ts";
import { sha256 } from "../crypto/sha256.ts";
import { generateIdentity } from "../identity/device-identity.ts";
import { SIGNING_LABELS, verifyBytes } from "../identity/signing.ts";
import { decodeBase64Url } from "../protocol/base64url.ts";
import { fromHex, toHex } from "../protocol/hex.ts";
import { decodeSpaceClaim, spaceClaimSigned, SPACE_CLAIM_BYTES } from "../protocol/space-claim.ts";
import { claimNewSpace, deriveSpaceId } from "./space-claim.ts";

describe("deriveSpaceId", () => {
  it("is the first 16 bytes of SHA-256('shoal/v2/space' 0x00 creator salt)", async () => {
    const creator = Uint8Array.from({ length: 32 }, (_, i) => i);
    const salt = Uint8Array.from({ length: 16 }, (_, i) => 0xf0 + i);
    const preimage = new Uint8Array([...new TextEncoder().encode("shoal/v2/space"), 0, ...creator, ...salt]);
    expect(preimage.length).toBe(14 + 1 + 32 + 16);
    const expected = toHex((await sha256(preimage)).subarray(0, 16));
    expect(await deriveSpaceId(creator, salt)).toBe(expected);
    // Pinned, so a change of the derivation cannot pass unnoticed (PROTOCOL.md 1, "Space claims").
    expect(expected).toBe("af2ada720f7009465d509a325efcb2c2");
    expect(
      await deriveSpaceId(
        creator,
        salt.map((b) => b ^ 1),
      ),
    ).not.toBe(expected);
  });
});

describe("claimNewSpace", () => {
  it("derives the id from the creator's key and signs the id with the hash of the space's token", async () => {
    const identity = await generateIdentity();
    const key = crypto.getRandomValues(new Uint8Array(32));
    const { id, claim } = await claimNewSpace(identity, key);
    expect(claim.length).toBe(SPACE_CLAIM_BYTES);
    const parts = decodeSpaceClaim(claim)!;
    expect(toHex(parts.creator)).toBe(toHex(identity.signingPublic));
    expect(await deriveSpaceId(parts.creator, parts.salt)).toBe(id);
    const token = decodeBase64Url(await deriveRelayToken(key, fromHex(id, 16)));
    const signed = spaceClaimSigned(fromHex(id, 16), await sha256(token));
    expect(await verifyBytes(parts.creator, SIGNING_LABELS.relayAuth, signed, parts.signature)).toBe(true);
    // Another salt each time: one creator makes many spaces.
    expect((await claimNewSpace(identity, key)).id).not.toBe(id);
  });
});
