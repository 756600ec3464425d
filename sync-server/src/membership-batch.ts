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

/** What `MembershipBatch.judge` decided: the first `accepted` commits may be stored, then `refused`. */
export interface BatchVerdict {
  accepted: number;
  refused?: MembershipCommitInvalid;
}

/** A membership commit's operation as checked alone (`checkMembershipOp`), with its id. */
type CheckedOp = AcceptedOp | MembershipCommitInvalid;

/**
 * The membership side of one uploaded `commits` frame (PROTOCOL.md 5). Each commit in order is checked
 * against two states of the space's log, and may be stored when either lets it:
 *
 * - the log as it will be once the commits before it are stored, so a frame that carries an operation
 *   and then commits it allows (a redemption, then the new member's first data; a re-upload after a
 *   wipe, log first) is taken whole;
 * - the log with every operation of the accepted part of the frame (the look-ahead), so a device the
 *   relay holds removed by a removal that the device's own later operation cancels (two admins who
 *   removed each other offline: the senior stays, rule 3) gets its data and that operation in, in
 *   chain order. Otherwise the relay, having heard the junior first, would refuse the senior's
 *   cancelling operation forever and disagree with every replica that holds the whole log.
 *
 * The look-ahead counts only operations stored with the commit: when a commit of the frame is refused,
 * the operations after it are out of the look-ahead and the frame is judged again up to it.
 *
 * - A membership commit's operation must check (`checkMembershipOp`), and its device must not be
 *   removed beyond its cut. A redemption of an invitation the log already holds revoked, expired at
 *   the redemption's time, or redeemed `uses` times by other devices is refused too: the relay is
 *   the first to accept a redemption, and one that cannot count would only leave its device outside.
 * - A data commit must pass `mayWrite`, except for a current reader's: its device is a current
 *   writer's or admin's, or the commit is within the cut of its removal. A reader's data commits are
 *   stored (every replica quarantines them): a device demoted while offline has them in its chain,
 *   and refusing them would keep its later commits, membership operations included, out for good.
 *   A space without members refuses nothing.
 *
 * @example
 * const batch = new MembershipBatch(await memberships.view(space), space);
 * const { accepted, refused } = await batch.judge(incoming, Date.now());
 * await store.append(space, incoming.slice(0, accepted), options);
 */
export class MembershipBatch {
  readonly #view: MembershipView;
  readonly #space: string;
  readonly #accepted = new Map<IncomingCommit, AcceptedOp>();

  constructor(view: MembershipView, space: string) {
    this.#view = view;
    this.#space = space;
  }

  /** How many of `commits`, from the first, may be stored, and why the next one may not. */
  async judge(commits: readonly IncomingCommit[], now: number): Promise<BatchVerdict> {
    const checked: (CheckedOp | undefined)[] = [];
    for (const c of commits)
      checked.push(c.membershipOp === undefined ? undefined : await this.#checked(c, now));
    let end = commits.length;
    let refused: MembershipCommitInvalid | undefined;
    // Each round ends earlier than the last, so this stops; it repeats only when a commit was let in
    // by an operation after the refusal, which the store will not hold.
    for (;;) {
      const ahead = this.#ahead(checked.slice(0, end));
      const walk = this.#walk(commits, checked, end, ahead);
      if (!walk.refused) return { accepted: end, ...(refused && { refused }) };
      ({ refused } = walk);
      end = walk.at;
      if (!walk.leaned) return { accepted: end, refused };
    }
  }

  /** The operations of those of `stored` that are membership commits, for `SpaceMemberships.stored`. */
  acceptedOps(stored: readonly IncomingCommit[]): AcceptedOp[] {
    return stored.flatMap((c) => this.#accepted.get(c) ?? []);
  }

  async #checked(c: IncomingCommit, now: number): Promise<CheckedOp> {
    try {
      const op = await checkMembershipOp(c, this.#space, now);
      return { id: await opId(op), op, text: c.membershipOp! };
    } catch (e) {
      if (e instanceof MembershipCommitInvalid) return e;
      throw e;
    }
  }

  /** The log's state with the frame's operations that checked: the view's own when there are none. */
  #ahead(checked: readonly (CheckedOp | undefined)[]): MembershipState | undefined {
    const more = checked.filter((x): x is AcceptedOp => x !== undefined && !(x instanceof Error));
    if (!more.some((x) => !this.#view.ops.has(x.id))) return this.#view.state;
    const ops = new Map(this.#view.ops);
    for (const x of more) ops.set(x.id, x.op);
    return resolved(ops, this.#view.creator);
  }

  /**
   * Checks `commits[0..end)` in order; `at` is the first refused one. `leaned`: a commit before it was
   * let in by the look-ahead only.
   */
  #walk(
    commits: readonly IncomingCommit[],
    checked: readonly (CheckedOp | undefined)[],
    end: number,
    ahead: MembershipState | undefined,
  ): { refused?: MembershipCommitInvalid; at: number; leaned: boolean } {
    this.#accepted.clear();
    const log = new RunningLog(this.#view);
    let leaned = false;
    for (let at = 0; at < end; at++) {
      const c = commits[at]!;
      const x = checked[at];
      const refuse = (why: string) => ({
        refused: new MembershipCommitInvalid(c.device, c.seq, why),
        at,
        leaned,
      });
      if (x === undefined) {
        const why = mayWrite(log.state(), c.device, c.seq);
        if (why === undefined || why === "reader") continue;
        if (mayWrite(ahead, c.device, c.seq) !== undefined) return refuse(WRITE_REFUSALS[why]);
        leaned = true;
        continue;
      }
      if (x instanceof MembershipCommitInvalid) return { refused: x, at, leaned };
      if (beyondCut(log.state(), c)) {
        if (beyondCut(ahead, c)) return refuse(WRITE_REFUSALS.removed);
        leaned = true;
      }
      const spent = spentInvitation(log.state(), x.op);
      if (spent) return refuse(MEMBERSHIP_REFUSALS[spent]);
      log.add(x);
      this.#accepted.set(c, x);
    }
    return { at: end, leaned };
  }
}

/** The view's log plus the operations of a frame taken so far, resolved only when asked after a change. */
class RunningLog {
  readonly #view: MembershipView;
  #ops: Map<string, MembershipOp> | undefined;
  #state: MembershipState | undefined;
  #stale = false;

  constructor(view: MembershipView) {
    this.#view = view;
    this.#state = view.state;
  }

  add({ id, op }: AcceptedOp): void {
    this.#ops ??= new Map(this.#view.ops);
    if (this.#ops.has(id)) return;
    this.#ops.set(id, op);
    this.#stale = true;
  }

  state(): MembershipState | undefined {
    if (this.#stale && this.#ops) {
      this.#state = resolved(this.#ops, this.#view.creator);
      this.#stale = false;
    }
    return this.#state;
  }
}

/** Whether `c` comes from a device `state` holds removed, beyond the cut of its removal. */
function beyondCut(state: MembershipState | undefined, c: IncomingCommit): boolean {
  const cut = state?.removedDevices.get(c.device);
  return cut !== undefined && c.seq > cut;
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
