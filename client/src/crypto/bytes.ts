/**
 * Copies bytes into a fresh `Uint8Array` backed by a plain `ArrayBuffer`.
 *
 * WebCrypto wants `BufferSource` over an `ArrayBuffer` (TypeScript 5.7+ rejects `SharedArrayBuffer`
 * backed views), and copying also means a caller that reuses its buffer while a digest or encryption is
 * pending cannot change what is processed.
 *
 * @example
 * await crypto.subtle.digest("SHA-256", copyBytes(view));
 */
export function copyBytes(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return new Uint8Array(bytes);
}

/**
 * Concatenates byte arrays into one new array.
 *
 * @example
 * concatBytes(new Uint8Array([1]), new Uint8Array([2, 3])); // Uint8Array [1, 2, 3]
 */
export function concatBytes(...parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  let length = 0;
  for (const p of parts) length += p.length;
  const out = new Uint8Array(length);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
