import { COMMIT_HEADER_BYTES, bytesEqual } from "@shoal/client/protocol";
import type { IncomingCommit, ReplaceVerdict } from "./store.ts";

/**
 * The rule for replacing a stored commit with its author's intact copy (PROTOCOL.md section 5,
 * "Replacing a damaged upload"), shared by every store adapter. Damage in transit to a commit the
 * relay stored as valid can only have changed its body or its epoch (any other changed header field or
 * length would have failed the sealed-commit checks, or the sequence rule), so a replacement must carry
 * the very same routing header but for the epoch (space, device, seq, prevHash, author key) and length,
 * and may replace only the device's head:
 * once a later commit chains to the stored one, its hash is part of history and stays. Since the relay
 * verifies every commit's signature before storing or replacing it (`incomingCommit`), a damaged upload
 * is now refused (`signature`) rather than stored, and a replacement can only come from the stored
 * commit's own signing key.
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
  // Every routing field but the epoch must match: the codec checks no epoch value, so transit damage
  // can leave a stored copy with a wrong one, and without this its author could never replace it
  // (hostile soak seed 10225). The epoch routes nothing at the relay.
  const same = (from: number, to: number) =>
    bytesEqual(stored.subarray(from, to), commit.bytes.subarray(from, to));
  return same(0, EPOCH_OFFSET) && same(EPOCH_OFFSET + 4, COMMIT_HEADER_BYTES) ? "replace" : "conflict";
}

/**
 * Where the u32 epoch sits in a sealed commit's routing header: after version (1), space (16), device
 * (16) and seq (8). The rest of the 109-byte header (prevHash, then the author key) must match too, so a
 * replacement is always signed by the key that signed the stored commit.
 */
const EPOCH_OFFSET = 1 + 16 + 16 + 8;
