import type { Dexie } from "dexie";
import { DEFAULT_LIMITS, MAX_COMMITS_PER_BATCH } from "../protocol/index.ts";
import type { VectorRow } from "../replica/stored-rows.ts";
import type { SpaceSealer } from "../sealing/sealer.ts";
import { readMembership } from "../spaces/membership-log.ts";
import type { DeviceId, SpaceId } from "../types.ts";

/**
 * What this device appeals with when the relay refuses it as removed from `space` (PROTOCOL.md 1,
 * "Appeal"): its own sealed commits past the last one the relay acknowledged, in chain order, at most
 * one frame of them (`MAX_COMMITS_PER_BATCH`, `maxFrameBytes` together). Among them may be its own
 * removal of the admin who removed it, which the relay has not heard and which cancels that removal
 * when this device's person is the more senior (section 10, rule 3).
 *
 * `undefined` when this device's own log says it is removed too (or is not a member): then there is
 * nothing to appeal, and the refusal stands as it is.
 *
 * @example
 * const commits = await appealCommits(dexie, sealer, space, device);
 * if (commits) await transport.appeal?.(space, token, proofs, commits);
 */
export async function appealCommits(
  dexie: Dexie,
  sealer: SpaceSealer,
  space: SpaceId,
  device: DeviceId,
): Promise<Uint8Array[] | undefined> {
  const state = await readMembership(dexie, space);
  if (!state || state.removedDevices.has(device) || !state.deviceOwner.has(device)) return undefined;
  const [held, acked] = await Promise.all([
    dexie.table<VectorRow>("_vectors").get([space, device]),
    dexie.table<VectorRow>("_acks").get([space, device]),
  ]);
  const from = (acked?.seq ?? 0) + 1;
  const to = Math.min(held?.seq ?? 0, from + MAX_COMMITS_PER_BATCH - 1);
  if (to < from) return [];
  const commits: Uint8Array[] = [];
  let bytes = 0;
  for (const c of await sealer.sealedRange(device, from, to)) {
    bytes += c.length;
    if (bytes > DEFAULT_LIMITS.maxFrameBytes) break;
    commits.push(c);
  }
  return commits;
}
