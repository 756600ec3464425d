/**
 * The relay's snapshot rule, shared by every store adapter so they cannot drift apart (PROTOCOL.md,
 * "Snapshots"). A snapshot may only claim commits the relay holds (`gap` otherwise), and replaces the
 * stored one only if its vector dominates it (`stale` otherwise). Absent devices count as 0.
 *
 * @example
 * const refusal = snapshotRefusal(vector, (device) => headOf(device), stored?.vector);
 * if (refusal) return refusal;
 */
export function snapshotRefusal(
  vector: ReadonlyMap<string, number>,
  headOf: (device: string) => number,
  stored: ReadonlyMap<string, number> | undefined,
): "gap" | "stale" | undefined {
  for (const [device, seq] of vector) if (seq > headOf(device)) return "gap";
  if (stored) for (const [device, seq] of stored) if ((vector.get(device) ?? 0) < seq) return "stale";
  return undefined;
}

/**
 * A snapshot vector as stored text: `<deviceHex>:<seq>` entries joined by `,` (empty for an empty
 * vector). Plain text rather than JSON so that Redis Lua can parse it without number-precision loss.
 *
 * @example
 * encodeSnapshotVector(new Map([["00ff...", 3]])); // "00ff...:3"
 */
export function encodeSnapshotVector(vector: ReadonlyMap<string, number>): string {
  return [...vector].map(([device, seq]) => `${device}:${seq}`).join(",");
}

/** Inverse of `encodeSnapshotVector`. */
export function decodeSnapshotVector(text: string): Map<string, number> {
  const out = new Map<string, number>();
  if (text === "") return out;
  for (const entry of text.split(",")) {
    const at = entry.indexOf(":");
    out.set(entry.slice(0, at), Number(entry.slice(at + 1)));
  }
  return out;
}
