import { Dexie, cmp, type IntervalTree, type ObservabilitySet } from "dexie";
import type { DocCache } from "./doc-cache.ts";

/** A node of Dexie's changed-keys tree (a range `from..to`, with subtrees). */
interface KeyNode {
  from?: unknown;
  to?: unknown;
  l?: KeyNode | null;
  r?: KeyNode | null;
  d: number;
}

/**
 * Marks the cached documents another writer stored since they were cached as `stale`, so the next edit
 * of one reads IndexedDB first; the others are edited straight from the cache, with no read
 * transaction. Dexie reports every committed readwrite transaction (of this page at once, of other
 * tabs and workers through its BroadcastChannel) as `storagemutated` with the keys it changed.
 *
 * `ownWrites` names the records this page's writer is storing right now: Dexie reports that write
 * synchronously as it commits, before the writer updates the cache itself, so those keys are skipped.
 * Another tab's write of the same record landing in that instant, or one whose report has not arrived
 * yet, is still safe: `writeLocalBatch` reads the stored heads inside its transaction and merges the
 * local change into a newer stored document (the edit then only saw the older version, as an edit made
 * concurrently on another device would).
 *
 * Returns a function that stops watching.
 */
export function watchOtherWrites(
  dexie: Dexie,
  cache: DocCache,
  ownWrites: () => ReadonlySet<string>,
): () => void {
  const docsPart = `idb://${dexie.name}/_docs/`;
  const onMutated = (parts: ObservabilitySet): void => {
    if ("all" in parts) {
      cache.markStale(undefined);
      return;
    }
    const tree = parts[docsPart] as IntervalTree | undefined;
    if (!tree || tree.d === 0) return;
    const keys = new Set<string>();
    if (!collectKeys(tree as KeyNode, keys)) {
      cache.markStale(undefined);
      return;
    }
    const own = ownWrites();
    cache.markStale([...keys].filter((k) => !own.has(k)));
  };
  Dexie.on("storagemutated", onMutated);
  return () => Dexie.on.storagemutated.unsubscribe(onMutated);
}

/** Adds the single keys of a changed-keys tree to `out`; false when it holds a range of keys. */
function collectKeys(node: KeyNode | null | undefined, out: Set<string>): boolean {
  if (!node || node.d === 0 || node.from === undefined) return true;
  if (typeof node.from !== "string" || typeof node.to !== "string" || cmp(node.from, node.to) !== 0)
    return false;
  out.add(node.from);
  return collectKeys(node.l, out) && collectKeys(node.r, out);
}
