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

/**
 * The `residency` refusal of an upload to a space pinned to a region this relay is not of (PROTOCOL.md
 * 5, "Residency"), naming the upload's first commit, or `undefined` when the space may be stored here.
 * The pin is the held log's (`held`), or that of a `create` operation in the upload itself (the log's
 * first commit, before the relay holds it). Which `create` counts is not decided here: a refusal only
 * keeps bytes out.
 *
 * @example
 * const refused = residencyRefusal(view.state?.residency, verified, "eu");
 */
export function residencyRefusal(
  held: string | undefined,
  commits: readonly IncomingCommit[],
  region: string | undefined,
): Refusal | undefined {
  const first = commits[0];
  if (!first) return undefined;
  let pinned = held;
  for (const c of commits) {
    if (pinned !== undefined) break;
    if (c.membershipOp === undefined) continue;
    try {
      const action = (JSON.parse(c.membershipOp) as { action?: { kind?: unknown; residency?: unknown } })
        .action;
      if (action?.kind === "create" && typeof action.residency === "string") pinned = action.residency;
    } catch {
      // Not JSON: the membership check refuses it.
    }
  }
  if (pinned === undefined || pinned === region) return undefined;
  const here = region === undefined ? "this relay declares no region" : `this relay is in region "${region}"`;
  return {
    metric: "residency",
    code: "residency",
    message: `This space is pinned to region "${pinned}" and ${here}: its commits are not stored here.`,
    device: first.device,
    seq: first.seq,
  };
}
