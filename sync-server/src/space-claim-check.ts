import { createHash } from "node:crypto";
import {
  bytesEqual,
  decodeSpaceClaim,
  fromHex,
  ID_BYTES,
  SIGNING_LABELS,
  signedMessage,
  spaceClaimSigned,
  spaceIdPreimage,
  type SpaceClaimFault,
} from "@shoal/client/protocol";
import { hashToken } from "./auth.ts";
import { ed25519Verifies } from "./commit-signature.ts";

// The refusal texts live in the client's protocol module, so a client can recognise them.
export { SPACE_CLAIM_REFUSALS, type SpaceClaimFault } from "@shoal/client/protocol";

/**
 * Checks the claim offered to register an unknown space (PROTOCOL.md 1, "Space claims"): it is 112
 * bytes, the space id is the first 16 bytes of SHA-256(`shoal/v2/space` 0x00 creator salt), and the
 * creator's Ed25519 signature verifies over `signedMessage(relayAuth, spaceId | SHA-256(token))`.
 * Returns the creator's public key when it holds, or the fault. A claim of the wrong length counts as
 * one that does not match the space. The caller runs the cheap limits first: a verification costs
 * about 0.1 ms, and anyone can send made-up claims.
 *
 * @example
 * const checked = checkSpaceClaim(spaceHex, token, parseOfferedSubprotocols(header).claim);
 * if ("fault" in checked) return refuse(403, SPACE_CLAIM_REFUSALS[checked.fault]);
 */
export function checkSpaceClaim(
  spaceHex: string,
  token: Uint8Array,
  claim: Uint8Array | undefined,
): { creator: Uint8Array } | { fault: SpaceClaimFault } {
  if (claim === undefined) return { fault: "missing" };
  const parts = decodeSpaceClaim(claim);
  if (!parts) return { fault: "wrong-space" };
  const space = fromHex(spaceHex, ID_BYTES);
  const derived = createHash("sha256").update(spaceIdPreimage(parts.creator, parts.salt)).digest();
  if (!bytesEqual(derived.subarray(0, ID_BYTES), space)) return { fault: "wrong-space" };
  const message = signedMessage(SIGNING_LABELS.relayAuth, spaceClaimSigned(space, hashToken(token)));
  if (!ed25519Verifies(parts.creator, message, parts.signature)) return { fault: "bad-signature" };
  return { creator: parts.creator };
}
