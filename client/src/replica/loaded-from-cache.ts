import * as A from "@automerge/automerge";
import type { CachedDoc } from "./doc-cache.ts";
import { buildFromCreation, CREATION_HEADS } from "./creation.ts";
import type { LoadedDoc } from "./replica.ts";

/**
 * A cached document handed out for editing without reading IndexedDB (`Replica.loadForEdit` decides it
 * may): a record still held as its creation is built for the caller alone (`owned`, the cache keeps the
 * creation), any other is the cached document itself, which the caller copies before changing.
 */
export function loadedFromCache(id: string, e: CachedDoc, actor: string): LoadedDoc {
  if (!e.doc)
    return {
      doc: buildFromCreation(id, e.create!, actor),
      heads: CREATION_HEADS,
      collection: e.collection,
      space: e.space,
      owned: true,
    };
  return {
    doc: e.doc,
    heads: e.creationOnly ? CREATION_HEADS : A.getHeads(e.doc),
    collection: e.collection,
    space: e.space,
  };
}
