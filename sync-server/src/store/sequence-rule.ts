import { bytesEqual } from "@shoal/client/protocol";
import type { IncomingCommit, RefusalCode } from "./store.ts";

/** The stored state of one (space, device) that the sequence rule looks at. */
export interface DeviceHead {
  /** Highest stored seq, 0 when none. */
  seq: number;
  /** SHA-256 of the commit at `seq` (unused when `seq` is 0). */
  hash: Uint8Array | undefined;
}

/**
 * The relay's sequence rule, shared by every store adapter so they cannot drift apart: a device's
 * commit is appended only as its next sequence number with a prevHash that chains to the stored head;
 * a byte-identical resend of a stored commit is a duplicate; anything else is refused.
 *
 * @example
 * const verdict = sequenceVerdict(head, commit, (seq) => hashAt(device, seq));
 * if (verdict === "append") insert(commit);
 */
export function sequenceVerdict(
  head: DeviceHead,
  commit: IncomingCommit,
  storedHashAt: (seq: number) => Uint8Array | undefined,
): "append" | "duplicate" | Exclude<RefusalCode, "quota"> {
  if (commit.seq <= head.seq) {
    const stored = storedHashAt(commit.seq);
    return stored !== undefined && bytesEqual(stored, commit.hash) ? "duplicate" : "conflict";
  }
  if (commit.seq > head.seq + 1) return "gap";
  // seq 1 carries a zero prevHash, which the codec already checked; later ones must chain to the head.
  if (commit.seq > 1 && (head.hash === undefined || !bytesEqual(head.hash, commit.prevHash))) return "chain";
  return "append";
}
