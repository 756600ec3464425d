import type { DeviceId, SpaceId } from "../types.ts";
import type { Creation } from "./creation.ts";

/** A row of `_docs`: one record's Automerge state. */
export interface DocRow {
  id: string;
  collection: string;
  space: SpaceId;
  /** The saved document; empty while the record holds only its creation (`create`). */
  bin: Uint8Array;
  /** Automerge heads, or `CREATION_HEADS` while only the creation is held. */
  heads: string[];
  /** The creation, kept until the document is first built (then `bin` holds it). */
  create?: Creation;
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
