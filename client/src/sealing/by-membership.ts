import { MEMBERSHIP_EPOCH } from "../protocol/membership-commit.ts";

/** Offset of the key epoch (u32) in a sealed commit's header (PROTOCOL.md 3). */
const EPOCH_OFFSET = 41;

/**
 * Splits sealed commits into membership commits and the others, keeping their order. Receivers apply
 * the membership ones first: a rotation among them brings the key the others may be sealed under, and
 * a redemption makes its device a member before its first commits are judged.
 *
 * @example
 * const [membership, data] = byMembership(frames);
 */
export function byMembership(frames: readonly Uint8Array[]): [Uint8Array[], Uint8Array[]] {
  const membership: Uint8Array[] = [];
  const data: Uint8Array[] = [];
  for (const f of frames) {
    const epoch =
      f.length >= EPOCH_OFFSET + 4
        ? new DataView(f.buffer, f.byteOffset, f.byteLength).getUint32(EPOCH_OFFSET)
        : 0;
    (epoch === MEMBERSHIP_EPOCH ? membership : data).push(f);
  }
  return [membership, data];
}
