import { ProtocolError } from "../errors.ts";
import { decodeBase64Url, encodeBase64Url } from "./base64url.ts";
import { CLAIM_SUBPROTOCOL_PREFIX, SPACE_CLAIM_BYTES } from "./space-claim.ts";
import {
  decodeDeviceAuth,
  decodeInvitationProof,
  DEVICE_SUBPROTOCOL_PREFIX,
  INVITATION_SUBPROTOCOL_PREFIX,
  type DeviceAuth,
  type InvitationProof,
} from "./device-auth.ts";

/** The WebSocket subprotocol a relay answers with. */
export const SUBPROTOCOL = "shoal.1";
/**
 * Prefix of the item a client offers for a space pinned to a region (`shoal-region.eu`), and that a
 * relay of that region (`--region eu`) answers with instead of `shoal.1`: the answer is how the client
 * knows, before it sends anything, that the relay declares the space's region (PROTOCOL.md 1,
 * "Residency"). A relay of another region, with none, or older than residency answers `shoal.1`.
 */
export const REGION_SUBPROTOCOL_PREFIX = "shoal-region.";

/**
 * The text of a relay's 403 to a connection (or access probe) for a space pinned to a region other
 * than the relay's own (or when it declares none): a client recognises it (`ResidencyRefused`).
 */
export const RESIDENCY_REFUSAL =
  "This relay is not in the region the space is pinned to; it stores nothing of it.";

/** Prefix of the second offered subprotocol, which carries the access token. */
export const TOKEN_SUBPROTOCOL_PREFIX = "shoal-token.";
/** Accepted access token sizes, in bytes (an HKDF-derived token is 32). */
export const MIN_TOKEN_BYTES = 16;
export const MAX_TOKEN_BYTES = 64;

/**
 * The subprotocols a client offers: `["shoal.1", "shoal-token.<base64url>"]`, plus
 * `"shoal-claim.<base64url>"` when it holds the space's claim (112 bytes, PROTOCOL.md 1), which a relay
 * that does not know the space yet requires to register it. Token and claim ride here because browsers
 * cannot set other headers on a WebSocket, and URLs end up in logs and history.
 *
 * @throws {ProtocolError} `bad-field` for a token outside 16 to 64 bytes or a claim that is not 112.
 * @example
 * new WebSocket(`${relay}/sync/${spaceHex}`, offeredSubprotocols(token, claim));
 */
export function offeredSubprotocols(
  token: Uint8Array,
  claim?: Uint8Array,
  proofs: readonly string[] = [],
): string[] {
  if (token.length < MIN_TOKEN_BYTES || token.length > MAX_TOKEN_BYTES) {
    throw new ProtocolError("bad-field", `A token must be ${MIN_TOKEN_BYTES} to ${MAX_TOKEN_BYTES} bytes.`);
  }
  const offered = [SUBPROTOCOL, TOKEN_SUBPROTOCOL_PREFIX + encodeBase64Url(token)];
  if (claim !== undefined) {
    if (claim.length !== SPACE_CLAIM_BYTES)
      throw new ProtocolError("bad-field", `A space claim must be ${SPACE_CLAIM_BYTES} bytes.`);
    offered.push(CLAIM_SUBPROTOCOL_PREFIX + encodeBase64Url(claim));
  }
  // Device and invitation proofs (`encodeDeviceAuth`, `encodeInvitationProof`), already items.
  return [...offered, ...proofs];
}

/**
 * Reads a `Sec-WebSocket-Protocol` request header. Returns `{ shoal, token, claim }`: whether `shoal.1`
 * was offered, the token bytes (or `undefined` when absent or malformed, which a relay treats alike),
 * and the bytes of the first `shoal-claim.` item (`undefined` when absent or not base64url; any length,
 * so the relay can say a claim of the wrong size does not match rather than that none came).
 *
 * @example
 * parseOfferedSubprotocols("shoal.1, shoal-token.AAEC..."); // { shoal: true, token: Uint8Array, claim: undefined }
 */
export function parseOfferedSubprotocols(header: string | undefined | null): {
  shoal: boolean;
  token: Uint8Array | undefined;
  claim: Uint8Array | undefined;
  /** The first `shoal-device.` item, decoded (undefined when absent or malformed). */
  device: DeviceAuth | undefined;
  /** The first `shoal-invitation.` item, decoded (undefined when absent or malformed). */
  invitation: InvitationProof | undefined;
  /** The region of the first `shoal-region.` item: the region the space is pinned to. */
  region: string | undefined;
} {
  let region: string | undefined;
  let device: DeviceAuth | undefined;
  let invitation: InvitationProof | undefined;
  let shoal = false;
  let token: Uint8Array | undefined;
  let claim: Uint8Array | undefined;
  let claimSeen = false;
  for (const raw of (header ?? "").split(",")) {
    const item = raw.trim();
    if (item === SUBPROTOCOL) shoal = true;
    else if (item.startsWith(TOKEN_SUBPROTOCOL_PREFIX) && token === undefined) {
      try {
        const bytes = decodeBase64Url(item.slice(TOKEN_SUBPROTOCOL_PREFIX.length));
        if (bytes.length >= MIN_TOKEN_BYTES && bytes.length <= MAX_TOKEN_BYTES) token = bytes;
      } catch {
        // A malformed token is the same as no token: the caller answers 401.
      }
    } else if (item.startsWith(DEVICE_SUBPROTOCOL_PREFIX) && device === undefined) {
      device = decodeDeviceAuth(item.slice(DEVICE_SUBPROTOCOL_PREFIX.length));
    } else if (item.startsWith(INVITATION_SUBPROTOCOL_PREFIX) && invitation === undefined) {
      invitation = decodeInvitationProof(item.slice(INVITATION_SUBPROTOCOL_PREFIX.length));
    } else if (item.startsWith(REGION_SUBPROTOCOL_PREFIX) && region === undefined) {
      region = item.slice(REGION_SUBPROTOCOL_PREFIX.length);
    } else if (item.startsWith(CLAIM_SUBPROTOCOL_PREFIX) && !claimSeen) {
      claimSeen = true;
      try {
        claim = decodeBase64Url(item.slice(CLAIM_SUBPROTOCOL_PREFIX.length));
      } catch {
        claim = new Uint8Array(0); // offered but unreadable: a claim that matches nothing
      }
    }
  }
  return { shoal, token, claim, device, invitation, region };
}
