/** The header epoch of a membership commit (PROTOCOL.md 10): the relay keeps those when it compacts. */
const MEMBERSHIP_EPOCH_BYTES = [0xff, 0xff, 0xff, 0xff];

/**
 * Whether sealed commit bytes are a membership commit (header epoch, bytes 41 to 44, is 0xffffffff).
 * Compaction keeps them: they are the space's membership log, in clear, which every device needs, and
 * they hold no record content.
 */
export function isMembershipCommitBytes(bytes: Uint8Array): boolean {
  return bytes.length >= 45 && MEMBERSHIP_EPOCH_BYTES.every((b, i) => bytes[41 + i] === b);
}

/** Whether `vector` is at or above `other` for every device of `other` (absent = 0). */
export function covers(vector: ReadonlyMap<string, number>, other: ReadonlyMap<string, number>): boolean {
  for (const [device, seq] of other) if ((vector.get(device) ?? 0) < seq) return false;
  return true;
}
