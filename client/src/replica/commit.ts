import type { CommitId, DeviceId, RecordId, SpaceId } from "../types.ts";
import type { Creation } from "./creation.ts";

/** What one commit did to one record. */
export interface RecordChange {
  readonly record: RecordId;
  readonly collection: string;
  readonly op: "insert" | "update" | "delete";
  /** The Automerge changes, in order; binary as Automerge encodes them. Empty for a lazy insert. */
  readonly changes: readonly Uint8Array[];
  /** For an insert: the record's first version as JSON, from which every replica builds the same change. */
  readonly create?: Creation;
  /** Top-level fields the commit changed (for history and audit); empty for a delete. */
  readonly paths: readonly string[];
}

/**
 * One local transaction's effect, possibly across several records of one space: the unit of history,
 * of sync and (later) of encryption. A replica applies a commit whole or not at all.
 */
export interface Commit {
  readonly id: CommitId;
  readonly space: SpaceId;
  readonly device: DeviceId;
  /** Per (space, device): 1, 2, 3, ... with no gap. */
  readonly seq: number;
  /** Wall-clock time at the author, for people only: merging never depends on it. */
  readonly at: number;
  readonly changes: readonly RecordChange[];
  /**
   * Set by the plaintext decoder when an authentic commit's plaintext cannot be read (why): the
   * commit then has no changes and is quarantined in its slot, never applied.
   */
  readonly defect?: { readonly reason: "malformed" | "limits"; readonly message: string };
  /**
   * A membership commit: the canonical JSON of the membership operation it carries (PROTOCOL.md 10),
   * verified; such a commit has no changes and travels in clear (header epoch 0xffffffff).
   */
  readonly membership?: string;
  /** The id of `membership`'s operation (SHA-256 hex of it), computed where it was opened or written. */
  readonly membershipId?: string;
  /** The key epoch this commit is sealed under, fixed when it is written (absent: 0). */
  readonly epoch?: number;
}

/** A commit as stored in the `_commits` table. */
export interface StoredCommit extends Commit {
  /** This replica's causal order (auto-increment). */
  readonly pos?: number;
  /** The record ids of `changes`, indexed (multi-entry) for history. */
  readonly records: readonly string[];
}

/** The id of commit `seq` of `device` in `space`. */
export function commitId(space: SpaceId, device: DeviceId, seq: number): CommitId {
  return `${space}.${device}.${seq}` as CommitId;
}

/** Strips storage-only fields. */
export function toCommit(s: StoredCommit): Commit {
  return {
    id: s.id,
    space: s.space,
    device: s.device,
    seq: s.seq,
    at: s.at,
    changes: s.changes,
    ...(s.membership !== undefined && { membership: s.membership, membershipId: s.membershipId }),
    ...(s.epoch ? { epoch: s.epoch } : {}),
  };
}
