import {
  MEMBERSHIP_REFUSALS,
  mayWrite,
  opId,
  type MembershipOp,
  type MembershipState,
  type WriteRefusal,
} from "@shoal/client/protocol";
import { checkMembershipOp, MembershipCommitInvalid } from "./membership-commit-check.ts";
import { resolved, type MembershipView } from "./space-memberships.ts";
import type { IncomingCommit } from "./store/store.ts";

/** A membership operation the batch accepted, with its id and its text as stored. */
export interface AcceptedOp {
  id: string;
  op: MembershipOp;
  text: string;
}

/**
 * The membership side of one uploaded `commits` frame (PROTOCOL.md 5): each commit in order is checked
 * against the space's log as it will be once the commits before it are stored, so a frame that
 * carries an operation and then commits it allows (a redemption, then the new member's first data;
 * a re-upload after a wipe, log first) is taken whole. The relay stores a frame's commits up to the
 * first refusal, so an operation this state counts is stored whenever a commit after it is.
 *
 * - A membership commit's operation must check (`checkMembershipOp`), and its device must not be
 *   removed beyond its cut. A redemption of an invitation the log already holds revoked, expired at
 *   the redemption's time, or redeemed `uses` times by other devices is refused too: the relay is
 *   the first to accept a redemption, and one that cannot count would only leave its device outside.
 * - A data commit must pass `mayWrite`: its device is a current writer's or admin's, or the commit is
 *   within the cut of its removal or demotion. A space without members refuses nothing.
 *
 * @example
 * const batch = new MembershipBatch(await memberships.view(space), space);
 * for (const c of incoming) if (await batch.check(c, Date.now())) break;
 */
export class MembershipBatch {
  readonly #view: MembershipView;
  readonly #space: string;
  #ops: Map<string, MembershipOp> | undefined;
  #state: MembershipState | undefined;
  #stale = false;
  readonly #accepted = new Map<IncomingCommit, AcceptedOp>();

  constructor(view: MembershipView, space: string) {
    this.#view = view;
    this.#space = space;
    this.#state = view.state;
  }

  /** Why the commit may not be stored, or `undefined` when it may (then it counts for later ones). */
  async check(c: IncomingCommit, now: number): Promise<MembershipCommitInvalid | undefined> {
    if (c.membershipOp === undefined) {
      const why = mayWrite(this.#current(), c.device, c.seq);
      return why && new MembershipCommitInvalid(c.device, c.seq, WRITE_REFUSALS[why]);
    }
    let op: MembershipOp;
    try {
      op = await checkMembershipOp(c, this.#space, now);
    } catch (e) {
      if (e instanceof MembershipCommitInvalid) return e;
      throw e;
    }
    const cut = this.#current()?.removedDevices.get(c.device);
    if (cut !== undefined && c.seq > cut)
      return new MembershipCommitInvalid(c.device, c.seq, WRITE_REFUSALS.removed);
    const spent = op.action.kind === "redeem" && spentInvitation(this.#current(), op);
    if (spent) return new MembershipCommitInvalid(c.device, c.seq, MEMBERSHIP_REFUSALS[spent]);
    const id = await opId(op);
    this.#ops ??= new Map(this.#view.ops);
    if (!this.#ops.has(id)) {
      this.#ops.set(id, op);
      this.#stale = true;
    }
    this.#accepted.set(c, { id, op, text: c.membershipOp });
    return undefined;
  }

  /** The operations of those of `stored` that are membership commits, for `SpaceMemberships.stored`. */
  acceptedOps(stored: readonly IncomingCommit[]): AcceptedOp[] {
    return stored.flatMap((c) => this.#accepted.get(c) ?? []);
  }

  #current(): MembershipState | undefined {
    if (this.#stale && this.#ops) {
      this.#state = resolved(this.#ops, this.#view.creator);
      this.#stale = false;
    }
    return this.#state;
  }
}

/** Why a redemption cannot count under `state`, for an invitation the state holds. */
function spentInvitation(
  state: MembershipState | undefined,
  op: MembershipOp,
): "invitation-revoked" | "invitation-expired" | "invitation-used" | undefined {
  if (op.action.kind !== "redeem") return undefined;
  const held = state?.invitations.get(op.action.invitation);
  if (!held || held.redeemedBy.includes(op.author)) return undefined;
  if (held.revoked) return "invitation-revoked";
  if (op.at > held.expires) return "invitation-expired";
  return held.redeemedBy.length >= held.uses ? "invitation-used" : undefined;
}

// Sent in the `error membership` frame that names the refused commit.
const WRITE_REFUSALS: Record<WriteRefusal, string> = {
  removed: "This device was removed from the space; its commits beyond its cut are refused.",
  reader: "This device's person is a reader in this space; its data commits are refused.",
  "not-a-member": "This device is not a member of the space; its data commits are refused.",
};
