import { liveQuery } from "dexie";

/** What `subscribe` returns. */
export interface Subscription {
  unsubscribe(): void;
  readonly closed: boolean;
}

/** A standard (TC39-shaped) observable of query results. */
export interface Observable<T> {
  subscribe(next: (value: T) => void, error?: (e: unknown) => void): Subscription;
  subscribe(observer: { next?: (value: T) => void; error?: (e: unknown) => void }): Subscription;
}

/**
 * Runs `querier` now and again whenever a commit (of this tab, another tab of this browser, or applied
 * by sync) writes rows in a range it read. The read set is what the querier read through the query API
 * (table, index and key ranges); commits write rows in IndexedDB transactions whose write set Dexie
 * records, and Dexie's one BroadcastChannel carries write sets between tabs. A commit to another
 * collection, or outside the ranges read, does not re-run it.
 *
 * @example
 * const sub = live(() => db.patients.where("ward").equals("A").toArray()).subscribe(render);
 */
export function live<T>(querier: () => Promise<T> | T): Observable<T> {
  return liveQuery(querier) as unknown as Observable<T>;
}
