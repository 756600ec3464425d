import { createHash, timingSafeEqual } from "node:crypto";

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
 * True when a request may go on as far as its `Origin` is concerned: no allow-list is configured, the
 * request carries no `Origin` (only browsers send it, and they always do), or it is in the list. The
 * WebSocket upgrade and the access probe share this rule, so a page can never learn through one what
 * the other would refuse it.
 *
 * @example
 * if (!originAllowed(deps.allowedOrigins, c.req.header("origin"))) return c.text("Origin not allowed.", 403);
 */
export function originAllowed(allowed: readonly string[] | undefined, origin: string | undefined): boolean {
  return !allowed || origin === undefined || allowed.includes(origin);
}
