/**
 * Domain labels of every Shoal signature. A signature is always over `label 0x00 bytes`, so one made for
 * one purpose (a relay login, say) can never be replayed as another (a commit). Shared by the client,
 * which signs and verifies, and the relay, which verifies what it stores.
 */
export const SIGNING_LABELS = {
  commit: "shoal/v2/commit",
  deviceAuth: "shoal/v2/device-auth",
  membership: "shoal/v2/membership",
  relayAuth: "shoal/v2/relay-auth",
  redeem: "shoal/v2/redeem",
  snapshot: "shoal/v2/snapshot",
} as const;

/** One of `SIGNING_LABELS`' values. */
export type SigningLabel = (typeof SIGNING_LABELS)[keyof typeof SIGNING_LABELS];

/**
 * The exact message an Ed25519 signature for `label` covers: the label's UTF-8 bytes, a zero byte, then
 * `bytes`.
 *
 * @example
 * crypto.verify(null, signedMessage(SIGNING_LABELS.commit, decoded.signed), key, decoded.signature);
 */
export function signedMessage(label: SigningLabel, bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  const prefix = new TextEncoder().encode(label);
  const out = new Uint8Array(prefix.length + 1 + bytes.length);
  out.set(prefix);
  out.set(bytes, prefix.length + 1);
  return out;
}
