import { xchacha20poly1305 } from "@noble/ciphers/chacha.js";
import { DecryptError, Locked } from "../errors.ts";

const NONCE_BYTES = 24;
const utf8 = new TextEncoder();

/**
 * The data key of a locked database while it is unlocked: 32 random bytes that encrypt every stored
 * value (XChaCha20-Poly1305, a random 24-byte nonce per value). It must live in memory as bytes, not as a
 * WebCrypto key, because values are encrypted inside IndexedDB transactions, where awaiting WebCrypto
 * would let the transaction commit half done; `@noble/ciphers` encrypts synchronously.
 *
 * `forget()` overwrites the bytes and drops them: from then on every `seal` or `open` throws `Locked`.
 *
 * @example
 * const key = new DataKey(bytes);
 * const sealed = key.seal(plain, "docs");
 * key.open(sealed, "docs"); // plain
 */
export class DataKey {
  #key: Uint8Array | null;

  constructor(key?: Uint8Array) {
    this.#key = key ? key.slice() : null;
  }

  /** True while the key is held. */
  get held(): boolean {
    return this.#key !== null;
  }

  /** Holds `key` (a copy), replacing and wiping any held before. */
  hold(key: Uint8Array): void {
    this.forget();
    this.#key = key.slice();
  }

  /** Wipes and drops the key. */
  forget(): void {
    this.#key?.fill(0);
    this.#key = null;
  }

  #need(): Uint8Array {
    if (!this.#key) throw new Locked();
    return this.#key;
  }

  /** nonce || ciphertext || tag of `plain`, bound to `context` (the table and record it belongs to). */
  seal(plain: Uint8Array, context: string): Uint8Array {
    const key = this.#need();
    const nonce = crypto.getRandomValues(new Uint8Array(NONCE_BYTES));
    const body = xchacha20poly1305(key, nonce, utf8.encode(context)).encrypt(plain);
    const out = new Uint8Array(NONCE_BYTES + body.length);
    out.set(nonce);
    out.set(body, NONCE_BYTES);
    return out;
  }

  /** The plaintext `seal` made under this key and `context`; `DecryptError` if not. */
  open(sealed: Uint8Array, context: string): Uint8Array {
    const key = this.#need();
    if (!(sealed instanceof Uint8Array) || sealed.length < NONCE_BYTES + 16)
      throw new DecryptError("A stored value is not encrypted as a locked database's values are.");
    try {
      return xchacha20poly1305(key, sealed.subarray(0, NONCE_BYTES), utf8.encode(context)).decrypt(
        sealed.subarray(NONCE_BYTES),
      );
    } catch (e) {
      throw new DecryptError("A stored value does not open under this database's key (altered or moved).", {
        cause: e,
      });
    }
  }
}
