import { InsecureContext } from "../errors.ts";

/**
 * WebCrypto's `SubtleCrypto`, or an `InsecureContext` error that says why it is missing. Browsers expose
 * `crypto.subtle` only in secure contexts (https, or http on localhost), so a page opened over plain http
 * from another machine on the LAN would otherwise fail deep inside sealing with "Cannot read properties
 * of undefined". Every use of WebCrypto in Shoal goes through this.
 *
 * @example
 * const digest = await subtle().digest("SHA-256", bytes);
 */
export function subtle(): SubtleCrypto {
  const s = (globalThis as { crypto?: { subtle?: SubtleCrypto } }).crypto?.subtle;
  if (!s) throw new InsecureContext("WebCrypto");
  return s;
}
