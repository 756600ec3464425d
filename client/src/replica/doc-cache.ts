import type * as A from "@automerge/automerge";
import type { SpaceId } from "../types.ts";
import type { Creation } from "./creation.ts";

/** A document held in memory, with the heads last seen in IndexedDB. */
export interface CachedDoc {
  /** The document, or null while only the creation is known (built on first use). */
  doc: A.Doc<unknown> | null;
  create?: Creation;
  /** Heads of the binary in `_docs` when this entry was last synchronized with it. */
  persistedHeads: readonly string[];
  /** Queued local commits not yet written that touch this document: such an entry is never evicted. */
  pins: number;
  /** True while `doc` holds only the creation (its logical heads are `CREATION_HEADS`). */
  creationOnly?: boolean;
  /**
   * True when another writer (a tab, a worker, a rebuild) stored the document after it was cached
   * (`watchOtherWrites`): the next edit reads IndexedDB before building on it.
   */
  stale?: boolean;
  /** Bumped on every local publish, to tell whether a flush result is still the newest state. */
  version: number;
  collection: string;
  space: SpaceId;
}

/**
 * A bounded LRU of loaded Automerge documents. Documents are loaded only to edit or merge, and at most
 * `capacity` unpinned ones stay in memory, so a replica of 100,000 records never holds 100,000 documents.
 */
export class DocCache {
  readonly #entries = new Map<string, CachedDoc>();
  readonly capacity: number;

  constructor(capacity = 500) {
    this.capacity = capacity;
  }

  get(id: string): CachedDoc | undefined {
    const e = this.#entries.get(id);
    if (e) {
      this.#entries.delete(id);
      this.#entries.set(id, e);
    }
    return e;
  }

  set(id: string, entry: CachedDoc): void {
    this.#entries.delete(id);
    this.#entries.set(id, entry);
    if (this.#entries.size <= this.capacity) return;
    for (const [k, e] of this.#entries) {
      if (this.#entries.size <= this.capacity) break;
      if (e.pins === 0) this.#entries.delete(k);
    }
  }

  delete(id: string): void {
    this.#entries.delete(id);
  }

  /** Marks the given entries (every entry for `undefined`) as possibly older than IndexedDB. */
  markStale(ids: Iterable<string> | undefined): void {
    if (ids === undefined) {
      for (const e of this.#entries.values()) e.stale = true;
      return;
    }
    for (const id of ids) {
      const e = this.#entries.get(id);
      if (e) e.stale = true;
    }
  }

  clear(): void {
    this.#entries.clear();
  }

  get size(): number {
    return this.#entries.size;
  }
}
