import { createHash, timingSafeEqual } from "node:crypto";
import {
  decodeBase64Url,
  MAX_TOKEN_BYTES,
  MIN_TOKEN_BYTES,
  TOKEN_SUBPROTOCOL_PREFIX,
} from "@shoal/client/protocol";

const BASE64URL = /^[A-Za-z0-9_-]*$/;
const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/**
 * The token bytes of an unpadded base64url text, or `undefined` when it is not base64url or not 16 to
 * 64 bytes long. Unused low bits of the last character are ignored rather than refused: the answer to
 * a made-up token must not depend on its last character (401 for some, 403 for others would tell a
 * prober something about the check, and told people nothing useful). A real client always sends the
 * canonical form.
 *
 * @example
 * parseTokenText(encodeBase64Url(token)); // token
 */
export function parseTokenText(text: string): Uint8Array | undefined {
  if (!BASE64URL.test(text) || text.length % 4 === 1) return undefined;
  const spare = text.length % 4 === 2 ? 4 : text.length % 4 === 3 ? 2 : 0;
  let canonical = text;
  if (spare > 0) {
    const last = ALPHABET.indexOf(text[text.length - 1]!);
    canonical = text.slice(0, -1) + ALPHABET[last & ~((1 << spare) - 1)];
  }
  const bytes = decodeBase64Url(canonical);
  return bytes.length >= MIN_TOKEN_BYTES && bytes.length <= MAX_TOKEN_BYTES ? bytes : undefined;
}

/**
 * The token offered in a `Sec-WebSocket-Protocol` header (the first `shoal-token.` item), parsed by
 * `parseTokenText`; `undefined` when there is none or it is malformed (the upgrade answers 401).
 *
 * @example
 * offeredToken("shoal.1, shoal-token.AAECAwQFBgcICQoLDA0ODw"); // 16 bytes
 */
export function offeredToken(header: string | undefined): Uint8Array | undefined {
  for (const raw of (header ?? "").split(",")) {
    const item = raw.trim();
    if (item.startsWith(TOKEN_SUBPROTOCOL_PREFIX))
      return parseTokenText(item.slice(TOKEN_SUBPROTOCOL_PREFIX.length));
  }
  return undefined;
}

/**
 * SHA-256 of an access token: the only form in which the relay keeps it. The token is derived by HKDF
 * from the space key, so it has full entropy and a plain hash (no salt, no slow KDF) is enough.
 *
 * @example
 * await store.registerSpace(spaceHex, hashToken(token));
 */
export function hashToken(token: Uint8Array): Uint8Array {
  return new Uint8Array(createHash("sha256").update(token).digest());
}

/**
 * True when a presented token hashes to the stored hash, compared in constant time so the comparison
 * leaks nothing about how many leading bytes matched.
 *
 * @example
 * if (!tokenMatches(presented, await store.tokenHash(space))) return c.text("Forbidden", 403);
 */
export function tokenMatches(token: Uint8Array, storedHash: Uint8Array | undefined): boolean {
  if (!storedHash) return false;
  const presented = hashToken(token);
  return presented.length === storedHash.length && timingSafeEqual(presented, storedHash);
}

/**
 * The allow-list entry that stands for the relay's own origin: an `Origin` whose host (and port) is the
 * request's `Host`. It is the default when the relay serves the app itself (`--static`), so the app
 * works behind any name or TLS proxy that keeps the `Host` header, and other sites' pages cannot
 * connect with a visitor's browser.
 */
export const SELF_ORIGIN = "self";

/** The allow-list entry that allows every `Origin` (`--origin '*'`). */
export const ANY_ORIGIN = "*";

/**
 * True when a request may go on as far as its `Origin` is concerned: no allow-list is configured, the
 * request carries no `Origin` (only browsers send it, and they always do), or it is in the list (see
 * `SELF_ORIGIN` and `ANY_ORIGIN`). The WebSocket upgrade and the access probe share this rule, so a
 * page can never learn through one what the other would refuse it.
 *
 * @example
 * if (!originAllowed(deps.allowedOrigins, c.req.header("origin"), c.req.header("host"))) return c.text("Origin not allowed.", 403);
 */
export function originAllowed(
  allowed: readonly string[] | undefined,
  origin: string | undefined,
  host?: string,
): boolean {
  if (!allowed || origin === undefined || allowed.includes(ANY_ORIGIN) || allowed.includes(origin))
    return true;
  if (!allowed.includes(SELF_ORIGIN) || host === undefined) return false;
  try {
    return new URL(origin).host === host.toLowerCase();
  } catch {
    return false;
  }
}
