const TABLE = new Uint32Array(256);
for (let n = 0; n < 256; n++) {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  TABLE[n] = c >>> 0;
}

/**
 * CRC-32 (IEEE 802.3, the one in zip and PNG) of some bytes, as an unsigned 32-bit number.
 *
 * Used as the typo check of invitation links, not for security: CRC-32 detects every burst error up to 32
 * bits for certain, which covers any one mistyped character and any two swapped neighbours of a pasted
 * key, where a truncated hash would only catch them with high probability. It is also synchronous, so a
 * link can be checked without awaiting WebCrypto.
 *
 * @example
 * crc32(new TextEncoder().encode("123456789")); // 0xcbf43926
 */
export function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = TABLE[(c ^ b) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
