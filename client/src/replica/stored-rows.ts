import type { DeviceId, SpaceId } from "../types.ts";

/** A row of `_docs`: one record's Automerge state. */
export interface DocRow {
  id: string;
  collection: string;
  space: SpaceId;
  bin: Uint8Array;
  heads: string[];
  /** 1 when the record carries a delete (a tombstone); its materialized row is gone. */
  deleted: 0 | 1;
}

/** A row of `_vectors`: the highest contiguous sequence held for (space, device). */
export interface VectorRow {
  space: SpaceId;
  device: DeviceId;
  seq: number;
}

/** A row of `_spaces`. */
export interface SpaceRow {
  id: SpaceId;
  name: string;
  key: Uint8Array;
  createdAt: number;
  /** The database's own space, created with it and never shared by default. */
  private: boolean;
}
