import { Dexie, type ObservabilitySet } from "dexie";

/**
 * Calls `fn` once now (on a microtask) and then after every committed IndexedDB transaction that wrote
 * `_vectors` of `dexie`'s database: this page's writes as they commit, other tabs' and workers' through
 * Dexie's BroadcastChannel. Every local commit writes its vector row, so this is the sync engine's
 * wake-up for uploads. Unlike a live query of the table, it reads nothing: a single-record update while
 * syncing does not cost a second (read) transaction just to announce itself.
 *
 * Returns a function that stops the calls.
 */
export function onVectorWrite(dexie: Dexie, fn: () => void): () => void {
  const part = `idb://${dexie.name}/_vectors/`;
  let stopped = false;
  const call = (): void => {
    if (stopped) return;
    try {
      fn();
    } catch (e) {
      // Runs inside Dexie's commit event: a throw here must not reach the transaction that fired it.
      console.error("Shoal: a vector-write listener threw", e);
    }
  };
  const onMutated = (parts: ObservabilitySet): void => {
    if ("all" in parts || part in parts) call();
  };
  Dexie.on("storagemutated", onMutated);
  queueMicrotask(call);
  return () => {
    stopped = true;
    Dexie.on.storagemutated.unsubscribe(onMutated);
  };
}
