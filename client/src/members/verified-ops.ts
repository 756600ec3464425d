/**
 * Membership commits whose operation was checked where it arrived (opened from sealed bytes: signed by
 * its device, canonical, for its space). Only these are applied: a plaintext commit handed to
 * `applyCommits` may claim anything, and a membership operation decides who may write.
 */
const verified = new WeakSet<object>();

/** Marks a commit opened from sealed bytes whose membership operation verified. */
export function markVerifiedMembership<T extends object>(commit: T): T {
  verified.add(commit);
  return commit;
}

/** Whether `commit` is a membership commit marked by `markVerifiedMembership`. */
export function isVerifiedMembership(commit: object): boolean {
  return verified.has(commit);
}
