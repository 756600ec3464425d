import { ProtocolError } from "../errors.ts";
import { decodeBase64Url, encodeBase64Url } from "./base64url.ts";

/** The WebSocket subprotocol a relay answers with. */
export const SUBPROTOCOL = "shoal.1";
/** Prefix of the second offered subprotocol, which carries the access token. */
export const TOKEN_SUBPROTOCOL_PREFIX = "shoal-token.";
/** Accepted access token sizes, in bytes (an HKDF-derived token is 32). */
export const MIN_TOKEN_BYTES = 16;
export const MAX_TOKEN_BYTES = 64;

/**
 * The subprotocols a client offers: `["shoal.1", "shoal-token.<base64url>"]`. The token rides here
 * because browsers cannot set other headers on a WebSocket, and URLs end up in logs and history.
 *
 * @example
 * new WebSocket(`${relay}/sync/${spaceHex}`, offeredSubprotocols(token));
 */
export function offeredSubprotocols(token: Uint8Array): string[] {
  if (token.length < MIN_TOKEN_BYTES || token.length > MAX_TOKEN_BYTES) {
    throw new ProtocolError("bad-field", `A token must be ${MIN_TOKEN_BYTES} to ${MAX_TOKEN_BYTES} bytes.`);
  }
  return [SUBPROTOCOL, TOKEN_SUBPROTOCOL_PREFIX + encodeBase64Url(token)];
}

/**
 * Reads a `Sec-WebSocket-Protocol` request header. Returns `{ shoal, token }`: whether `shoal.1` was
 * offered, and the token bytes (or `undefined` when absent or malformed, which a relay treats alike).
 *
 * @example
 * parseOfferedSubprotocols("shoal.1, shoal-token.AAEC..."); // { shoal: true, token: Uint8Array }
 */
export function parseOfferedSubprotocols(header: string | undefined | null): {
  shoal: boolean;
  token: Uint8Array | undefined;
} {
  let shoal = false;
  let token: Uint8Array | undefined;
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
    }
  }
  return { shoal, token };
}
