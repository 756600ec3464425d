import { subtle } from "./subtle.ts";
import { copyBytes } from "./bytes.ts";

/**
 * SHA-256 of some bytes, through WebCrypto. Used to chain a device's sealed commits: each routing header
 * carries the hash of the device's previous sealed commit, so a dropped or swapped commit is noticed.
 *
 * @example
 * const prevHash = await sha256(previousSealedCommit); // 32 bytes
 */
export async function sha256(bytes: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await subtle().digest("SHA-256", copyBytes(bytes)));
}
