import { deriveCommitKey, deriveNonceKey } from "../crypto/keys.ts";
import { toHex } from "../protocol/index.ts";

/** Devices and epochs whose keys are kept at once; past it the cache starts over (a rare, large space). */
const MAX_ENTRIES = 1024;

/**
 * The AES-GCM commit key and HMAC nonce key of each (device, epoch) of one space, derived once: each
 * derivation is four WebCrypto calls (two imports, two HKDF), and sealing or opening a run of commits
 * of one device asked for them again for every commit. A space key of an epoch never changes, so a
 * derived pair stays right for the life of the sealer; a derivation that failed is not kept.
 *
 * @example
 * const [key, nonceKey] = await keys.of(spaceKey, deviceBytes, epoch);
 */
export class CommitKeys {
  readonly #pairs = new Map<string, Promise<[CryptoKey, CryptoKey]>>();

  of(spaceKey: Uint8Array, device: Uint8Array, epoch: number): Promise<[CryptoKey, CryptoKey]> {
    const id = `${epoch}:${toHex(device)}`;
    let pair = this.#pairs.get(id);
    if (!pair) {
      if (this.#pairs.size >= MAX_ENTRIES) this.#pairs.clear();
      pair = Promise.all([deriveCommitKey(spaceKey, device, epoch), deriveNonceKey(spaceKey, device, epoch)]);
      this.#pairs.set(id, pair);
      pair.catch(() => this.#pairs.delete(id));
    }
    return pair;
  }
}
