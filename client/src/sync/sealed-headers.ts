import { decodeSealedCommit, toHex } from "../protocol/index.ts";
import type { DeviceId } from "../types.ts";

/** Highest sequence per device among sealed commits (headers only; unreadable ones are skipped). */
export function lastSeqs(commits: readonly Uint8Array[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const bytes of commits) {
    try {
      const { header } = decodeSealedCommit(bytes);
      const d = toHex(header.device);
      if ((out.get(d) ?? 0) < header.seq) out.set(d, header.seq);
    } catch {
      // The receive step reports it.
    }
  }
  return out;
}

/** The seq of a sealed commit if its header names `device`, else null (also for an unreadable header). */
export function ownSeq(bytes: Uint8Array, device: DeviceId): number | null {
  try {
    const { header } = decodeSealedCommit(bytes);
    return toHex(header.device) === device ? header.seq : null;
  } catch {
    return null;
  }
}
