import { useSyncExternalStore } from "react";
import type { SyncStatus } from "../status/sync-status.ts";

/** What `useSyncStatus` watches: anything with a `status` like `db.status` (a `Database`, or a test double). */
export interface SyncStatusSource {
  readonly status: {
    get(): SyncStatus;
    subscribe(next: (value: SyncStatus) => void): { unsubscribe(): void };
  };
}

/** `useSyncExternalStore`'s two callbacks for one source. */
export interface SyncStatusStore {
  subscribe(onChange: () => void): () => void;
  getSnapshot(): SyncStatus;
}

// One store per source: React resubscribes whenever `subscribe` is a new function, so it must stay the
// same across renders of the same database.
const stores = new WeakMap<SyncStatusSource, SyncStatusStore>();

/**
 * The callbacks `useSyncStatus` hands to `useSyncExternalStore`, the same object for the same source.
 * `getSnapshot` returns the object `db.status` holds, which changes only when the status does, as
 * React requires.
 *
 * @example
 * const store = syncStatusStore(db);
 * const stop = store.subscribe(() => console.log(store.getSnapshot().state));
 */
export function syncStatusStore(db: SyncStatusSource): SyncStatusStore {
  let store = stores.get(db);
  if (!store) {
    store = {
      subscribe(onChange) {
        // `subscribe` delivers the current value at once; React compares snapshots, so that call is harmless.
        const sub = db.status.subscribe(() => onChange());
        return () => sub.unsubscribe();
      },
      getSnapshot: () => db.status.get(),
    };
    stores.set(db, store);
  }
  return store;
}

/**
 * A React hook returning the live `db.status`: the component re-renders whenever the sync state, the
 * connections, the commits waiting for a relay or `lastError` change.
 *
 * @example
 * const status = useSyncStatus(db);
 * return <span>{status.state === "synced" ? "Up to date" : `${status.pendingCommits} waiting`}</span>;
 */
export function useSyncStatus(db: SyncStatusSource): SyncStatus {
  const store = syncStatusStore(db);
  return useSyncExternalStore(store.subscribe, store.getSnapshot, store.getSnapshot);
}
