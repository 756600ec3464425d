import { generateIdentity } from "../identity/device-identity.ts";
import { claimNewSpace } from "../spaces/space-claim.ts";
import { deriveRelayToken } from "../crypto/keys.ts";
import { decodeBase64Url } from "../protocol/base64url.ts";
import { fromHex } from "../protocol/hex.ts";
import type { SpaceId } from "../types.ts";

/** A space a test can register at a relay: its id, the token a member derives, and the creator's claim. */
export interface ClaimedTestSpace {
  space: SpaceId;
  /** The space key the token derives from. */
  key: Uint8Array;
  /** The relay access token (32 bytes), as `deriveRelayToken` gives it. */
  token: Uint8Array;
  /** The 112-byte claim the relay needs to register the space (PROTOCOL.md 1, "Space claims"). */
  claim: Uint8Array;
}

/**
 * Test support, in WebCrypto so browser pages can use it too: a space made exactly as `createSpace`
 * makes one (a fresh creator identity, a random key, the derived id and the signed claim), with its
 * relay token. For tests that talk to a relay through a bare transport.
 *
 * @example
 * const s = await claimedTestSpace();
 * transport.connect(s.space, s.token, handlers, s.claim);
 */
export async function claimedTestSpace(): Promise<ClaimedTestSpace> {
  const identity = await generateIdentity();
  const key = globalThis.crypto.getRandomValues(new Uint8Array(32));
  const { id, claim } = await claimNewSpace(identity, key);
  const token = decodeBase64Url(await deriveRelayToken(key, fromHex(id, 16)));
  return { space: id, key, token, claim };
}
