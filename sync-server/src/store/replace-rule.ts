import { COMMIT_HEADER_BYTES, bytesEqual } from "@shoal/client/protocol";
import type { IncomingCommit, ReplaceVerdict } from "./store.ts";

/**
 * The rule for replacing a stored commit with its author's intact copy (PROTOCOL.md section 5,
 * "Replacing a damaged upload"), shared by every store adapter. Damage in transit to a commit the
 * relay stored as valid can only have changed its body (a changed header or length would have failed
 * the sealed-commit checks, or the sequence rule), so a replacement must carry the very same routing
 * header (space, device, seq, epoch, prevHash) and length, and may replace only the device's head:
 * once a later commit chains to the stored one, its hash is part of history and stays.
 *
 * `"replace"` means: write it. Otherwise the verdict to report: `"duplicate"` (already stored as is),
 * `"gap"` (nothing stored at that seq), `"conflict"` (not the head, or another header or length).
 *
 * @example
 * const verdict = replaceRule(headSeq, storedBytes, commit);
 * if (verdict === "replace") overwrite(commit);
 */
export function replaceRule(
  headSeq: number,
  stored: Uint8Array | undefined,
  commit: IncomingCommit,
): "replace" | Exclude<ReplaceVerdict, "replaced"> {
  if (stored === undefined || commit.seq > headSeq) return "gap";
  if (bytesEqual(stored, commit.bytes)) return "duplicate";
  if (commit.seq < headSeq || stored.length !== commit.bytes.length) return "conflict";
  const header = COMMIT_HEADER_BYTES;
  return bytesEqual(stored.subarray(0, header), commit.bytes.subarray(0, header)) ? "replace" : "conflict";
}
