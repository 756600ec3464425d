import type { ErrorCodeName } from "@shoal/client/protocol";
import { CommitSignatureInvalid } from "./commit-signature.ts";
import { MembershipCommitInvalid } from "./membership-commit-check.ts";
import { incomingCommit } from "./store/incoming-commit.ts";
import type { IncomingCommit, RefusalCode } from "./store/store.ts";

/**
 * A refused commit, as the non-fatal `error` frame names it and `shoal_commits_refused_total` counts it.
 *
 * @example
 * send({ type: "error", code: r.code, message: r.message, fatal: false, device: fromHex(r.device, 16), seq: r.seq });
 */
export interface Refusal {
  /** The metric label: the store's code, which can be finer than the wire code (`store-full`). */
  metric: string;
  code: ErrorCodeName;
  message: string;
  device: string;
  seq: number;
}

/**
 * The commit ready to store, or why it is not its device's (or not a readable membership commit). A
 * malformed commit still throws `ProtocolError` (the codec already refused those with the frame, so
 * that is a fatal protocol error).
 *
 * @example
 * const c = verifiedCommit(bytes);
 * if (c instanceof Error) return commitRefusal(c);
 */
export function verifiedCommit(
  bytes: Uint8Array,
): IncomingCommit | CommitSignatureInvalid | MembershipCommitInvalid {
  try {
    return incomingCommit(bytes);
  } catch (e) {
    if (e instanceof CommitSignatureInvalid || e instanceof MembershipCommitInvalid) return e;
    throw e;
  }
}

/**
 * The commits of a frame up to the first that `verifiedCommit` refuses, and that refusal: the ones
 * after it are not looked at, as the relay treats every refusal of an upload.
 *
 * @example
 * const { verified, refused } = verifiedPrefix(frame.commits);
 */
export function verifiedPrefix(commits: readonly Uint8Array[]): {
  verified: IncomingCommit[];
  refused?: Refusal;
} {
  const verified: IncomingCommit[] = [];
  for (const bytes of commits) {
    const c = verifiedCommit(bytes);
    if (c instanceof Error) return { verified, refused: commitRefusal(c) };
    verified.push(c);
  }
  return { verified };
}

/**
 * The refusal of one commit: `signature` or `membership`, naming it.
 *
 * @example
 * const refused = commitRefusal(new MembershipCommitInvalid(device, seq, "why"));
 */
export function commitRefusal(e: CommitSignatureInvalid | MembershipCommitInvalid): Refusal {
  const code = e instanceof CommitSignatureInvalid ? "signature" : "membership";
  return { metric: code, code, message: e.message, device: e.device, seq: e.seq };
}

/**
 * The refusal of the store's first refused commit of an append.
 *
 * @example
 * const refused = result.refused && storeRefusal(result.refused);
 */
export function storeRefusal(r: { device: string; seq: number; code: RefusalCode }): Refusal {
  return {
    metric: r.code,
    code: REFUSAL_WIRE_CODES[r.code],
    message: REFUSAL_MESSAGES[r.code],
    device: r.device,
    seq: r.seq,
  };
}

const REFUSAL_MESSAGES: Record<RefusalCode, string> = {
  conflict: "Another commit is already stored for this device and sequence number.",
  gap: "This is not the device's next sequence number; upload the missing commits first.",
  chain: "prevHash does not match the stored previous commit of this device.",
  quota: "The space has reached its storage quota.",
  "store-full": "The relay's storage is full; the commit was not stored.",
};

// The store's refusal codes on the wire: a full relay is a `quota` refusal like a full space.
const REFUSAL_WIRE_CODES = {
  conflict: "conflict",
  gap: "gap",
  chain: "chain",
  quota: "quota",
  "store-full": "quota",
} as const satisfies Record<RefusalCode, ErrorCodeName>;
