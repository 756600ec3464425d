import type * as A from "@automerge/automerge";
import type { RecordChange } from "./commit.ts";
import type { SpaceId } from "../types.ts";

/** A record's change made by a local transaction, waiting to be written. */
export interface PreparedEntry extends RecordChange {
  readonly space: SpaceId;
  /** Heads of the document the change was built on. */
  readonly baseHeads: readonly string[];
  /** The document after the change; null for a lazy insert (see `create`). */
  readonly doc: A.Doc<unknown> | null;
  /** The doc cache version this entry published. */
  readonly version: number;
}

/** A local commit waiting to be written: its sequence number is taken in the write transaction. */
export interface PreparedCommit {
  readonly space: SpaceId;
  readonly at: number;
  readonly entries: readonly PreparedEntry[];
}
