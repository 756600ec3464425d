import type { RelayLimits } from "./limits.ts";
import type { RelayMetrics } from "./metrics.ts";
import {
  commitRefusal,
  residencyRefusal,
  storeRefusal,
  verifiedPrefix,
  type Refusal,
} from "./commit-refusal.ts";
import { compactionGate, runCompactions } from "./compaction-gate.ts";
import { MembershipBatch } from "./membership-batch.ts";
import { REMOVED_CLOSE } from "./membership-gate.ts";
import type { HubMember, SpaceHub } from "./space-hub.ts";
import type { SpaceMemberships } from "./space-memberships.ts";
import type { IncomingCommit, RelayStore } from "./store/store.ts";

/** What `storeUpload` uses: the relay's shared parts. */
export interface UploadDeps {
  store: RelayStore;
  hub: SpaceHub;
  metrics: RelayMetrics;
  limits: Pick<RelayLimits, "quotaBytesPerSpace">;
  memberships: SpaceMemberships;
  /** Verifies the commits off the relay's thread (`VerifyPool`), with `verifiedPrefix`'s result. */
  verifier?: CommitVerifier;
  /** The relay's region (`--region`); a space pinned to another region is refused (`residency`). */
  region?: string;
}

/** What verifies a frame's commits elsewhere: `verifiedPrefix` of them, later. */
export interface CommitVerifier {
  verify(commits: readonly Uint8Array[]): Promise<ReturnType<typeof verifiedPrefix>>;
}

/** What `storeUpload` did with a batch of uploaded commits. */
export interface StoredUpload {
  /** Newly stored commits, in order (duplicates excluded). */
  stored: IncomingCommit[];
  duplicates: number;
  /** For each device of the accepted part, its stored head after the write: what an `ack` lists. */
  heads: Map<string, number>;
  /** The first commit refused (by its signature, the membership log or the store), if any. */
  refused?: Refusal;
  /** Devices the stored membership operations removed: their connections to the space are closed. */
  removed: string[];
}

/**
 * Stores uploaded commits the way PROTOCOL.md 5 says, for a session's `commits` frame and the appeal
 * endpoint alike: verifies each one in order (its device's signature) up to the first that fails, lets
 * the space's membership log judge those (`MembershipBatch`, with the frame's own operations looked
 * ahead), appends the accepted part in one durable write, takes the membership operations stored into
 * the relay's state, and counts it all. Then `answer` runs (the session acks there, before anything
 * else can close its socket), the stored commits go to the space's other connections (and instances),
 * and the connections of devices the stored operations removed are closed with 4403.
 *
 * @example
 * await storeUpload(deps, space, frame.commits, { from: session, answer: (u) => sendAck(u.heads) });
 */
export async function storeUpload(
  deps: UploadDeps,
  space: string,
  commits: readonly Uint8Array[],
  options: { from?: HubMember; answer?: (upload: StoredUpload) => void } = {},
): Promise<StoredUpload> {
  const { store, metrics, hub, memberships } = deps;
  const now = Date.now();
  // The first commit that is not its device's ends the batch like a store refusal: the ones before it
  // are judged and stored, the ones after it not looked at.
  const { verified, refused: unsigned } = deps.verifier
    ? await deps.verifier.verify(commits)
    : verifiedPrefix(commits);
  let invalid = unsigned;
  const view = await memberships.view(space);
  // A space pinned to another region (its log's `create`, held or in this frame) is stored nowhere here.
  const pinned = residencyRefusal(view.state?.residency, verified, deps.region);
  const batch = new MembershipBatch(view, space);
  const verdict = pinned ? { accepted: 0 } : await batch.judge(verified, now);
  if (pinned) invalid = pinned;
  else if (verdict.refused) invalid = commitRefusal(verdict.refused);
  // A counted `compact` operation is stored like any other; what it drops is decided after the append
  // (PROTOCOL.md 12).
  const incoming = verified.slice(0, verdict.accepted);
  const gate = await compactionGate(view, incoming);
  const result =
    incoming.length > 0
      ? await store.append(space, incoming, { quotaBytes: deps.limits.quotaBytesPerSpace })
      : { stored: [], duplicates: 0, heads: new Map<string, number>() };
  // Durable first, then dropped: a crash in between leaves the operation stored and the commits too,
  // and a re-upload of the operation is a duplicate, so the relay then keeps them (see PROTOCOL.md 12).
  for (const freed of await runCompactions(store, space, gate.compactions, result.stored))
    metrics.compacted(freed);
  const storedAt = performance.now();
  const removed = await memberships.stored(space, batch.acceptedOps(result.stored));
  metrics.commitsIn += result.stored.length;
  metrics.commitBytesIn += result.stored.reduce((n, c) => n + c.bytes.length, 0);
  metrics.duplicates += result.duplicates;
  // The store stops at its first refusal, which comes before the invalid commit if both exist.
  const refused = result.refused ? storeRefusal(result.refused) : invalid;
  if (refused) metrics.commitRefused(refused.metric);
  const { stored, duplicates, heads } = result;
  const upload: StoredUpload = { stored, duplicates, heads, removed, ...(refused && { refused }) };
  options.answer?.(upload);
  const others = hub.count(space) - (options.from ? 1 : 0);
  const pushed =
    stored.length > 0 && others > 0 ? () => metrics.pushed(performance.now() - storedAt) : undefined;
  hub.publish(
    options.from ?? { space },
    stored.map((c) => c.bytes),
    pushed,
  );
  // A removal takes effect at once: its devices' connections close once the removal is on its way.
  hub.closeDevices(space, removed, REMOVED_CLOSE.code, REMOVED_CLOSE.reason);
  return upload;
}
