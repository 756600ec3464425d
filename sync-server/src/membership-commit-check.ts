import {
  COMMIT_HEADER_BYTES,
  DEVICE_AUTH_WINDOW_MS,
  PUBLIC_KEY_BYTES,
  ProtocolError,
  membershipOpText,
  toHex,
  verifyOp,
  type CommitHeader,
  type MembershipOp,
} from "@shoal/client/protocol";
import type { IncomingCommit } from "./store/store.ts";

/**
 * A membership commit (header epoch `MEMBERSHIP_EPOCH`) the relay will not store, or a commit its
 * space's membership log does not let its device write: refused alone with the wire error code
 * `membership` (naming the commit, like `signature`), and the session keeps serving. `message` is the
 * text the relay sends.
 *
 * @example
 * if (e instanceof MembershipCommitInvalid) send({ type: "error", code: "membership", message: e.message, ... });
 */
export class MembershipCommitInvalid extends Error {
  override readonly name = "MembershipCommitInvalid";
  constructor(
    /** Device id of the refused commit, hex. */
    readonly device: string,
    /** Its sequence number. */
    readonly seq: number,
    message: string,
  ) {
    super(message);
  }
}

/**
 * The operation text a membership commit's body carries (UTF-8, at most `MAX_MEMBERSHIP_OP_BYTES`).
 * Throws `MembershipCommitInvalid` rather than the codec's `ProtocolError`: a bad operation is the
 * fault of one commit, not of the frame, so it is refused alone.
 *
 * @example
 * const text = membershipBodyText(header, body);
 */
export function membershipBodyText(header: CommitHeader, body: Uint8Array): string {
  try {
    return membershipOpText(body);
  } catch (e) {
    if (!(e instanceof ProtocolError)) throw e;
    throw new MembershipCommitInvalid(toHex(header.device), header.seq, e.message);
  }
}

/**
 * Checks the operation of a membership commit before the relay stores it (PROTOCOL.md 5): it is JSON,
 * names this space, is authored by the commit's own device and key, verifies (`verifyOp`: signature,
 * key bindings, redemption proof), and, for a `redeem`, its time is within `DEVICE_AUTH_WINDOW_MS` of
 * `now`: the relay is the first to accept a redemption, so it holds the redeemer to its clock (the
 * log decides expiry by that claimed time). Returns the parsed operation, or throws
 * `MembershipCommitInvalid`. Whether the operation counts (its author's authority) is not checked here:
 * an operation by a non-admin is stored and does not count, as on every replica (`resolveMembership`).
 *
 * @example
 * if (c.membershipOp !== undefined) ops.set(await opId(op), await checkMembershipOp(c, spaceHex, Date.now()));
 */
export async function checkMembershipOp(
  commit: IncomingCommit,
  space: string,
  now: number,
): Promise<MembershipOp> {
  const { device, seq } = commit;
  const refuse = (why: string) => new MembershipCommitInvalid(device, seq, why);
  // The author key is the last field of the routing header (PROTOCOL.md 3), already verified to sign.
  const authorKey = toHex(commit.bytes.subarray(COMMIT_HEADER_BYTES - PUBLIC_KEY_BYTES, COMMIT_HEADER_BYTES));
  let op: MembershipOp;
  try {
    op = JSON.parse(commit.membershipOp ?? "") as MembershipOp;
  } catch {
    throw refuse("A membership commit's body must be the JSON text of one operation.");
  }
  if (typeof op !== "object" || op === null || Array.isArray(op))
    throw refuse("A membership commit's body must be the JSON text of one operation.");
  if (op.space !== space) throw refuse("The membership operation names another space.");
  if (op.author !== device || op.authorKey !== authorKey)
    throw refuse("The membership operation's author is not the commit's device and key.");
  if (!(await verifyOp(op))) throw refuse("The membership operation does not verify.");
  if (op.action.kind === "redeem" && Math.abs(op.at - now) > DEVICE_AUTH_WINDOW_MS)
    throw refuse("The redemption's time is too far from the relay's clock.");
  return op;
}
