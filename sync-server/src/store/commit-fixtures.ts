import { createHash, randomBytes } from "node:crypto";
import { encodeSealedCommit, fromHex, toHex } from "@shoal/client/protocol";

/**
 * Test support: a chain of valid sealed commits for one device, with random bodies standing in for
 * ciphertext (the relay never looks inside). Used by the store contract and the relay tests.
 *
 * @example
 * const [c1, c2] = makeChain(spaceHex, deviceHex, 2);
 */
export function makeChain(
  space: string,
  device: string,
  count: number,
  options: { from?: number; prevHash?: Uint8Array; bodyBytes?: number } = {},
): Uint8Array[] {
  const out: Uint8Array[] = [];
  let prevHash = options.prevHash ?? new Uint8Array(32);
  const from = options.from ?? 1;
  for (let seq = from; seq < from + count; seq++) {
    const body = new Uint8Array(randomBytes(options.bodyBytes ?? 40));
    const bytes = encodeSealedCommit(
      { version: 1, space: fromHex(space, 16), device: fromHex(device, 16), seq, epoch: 0, prevHash },
      body,
    );
    out.push(bytes);
    prevHash = sha256(bytes);
  }
  return out;
}

/** SHA-256 of some bytes, as a plain Uint8Array. */
export function sha256(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(createHash("sha256").update(bytes).digest());
}

/** A random 16-byte id as hex. */
export function randomId(): string {
  return toHex(new Uint8Array(randomBytes(16)));
}
