import type { CollectionDeclaration } from "./replica/collection-spec.ts";
import type { Draft, SchemaTypes, Synchronous } from "./replica/collection-types.ts";
import type { InsertOptions } from "./replica/transaction.ts";
import type { LockOptions } from "./lock/at-rest-lock.ts";
import type { CommitId, DeviceId, RecordId, SpaceId } from "./types.ts";

// The types of `DatabaseCore`'s methods and of `openDatabase`, apart from the class so that it reads as
// its methods. database.ts exports them again.

/** A commit of another device kept aside by `db.quarantine()`: refused, never applied. */
export interface QuarantinedCommit {
  readonly id: CommitId;
  readonly space: SpaceId;
  readonly device: DeviceId;
  readonly seq: number;
  /** Stable: `malformed`, `limits`, `reserved`, `misplaced`, `automerge`, `storage`, `dependency`. */
  readonly reason: string;
  readonly message: string;
  /** When this replica quarantined it (ms since the epoch). */
  readonly at: number;
  /** Where it came from: `sync` (relay or tab), `peer` (WebRTC), `bundle`. */
  readonly from: string;
}

/**
 * Options of `db.transact`. `durable`: `"local"` (the default) resolves once the commit is saved on this
 * device; `"relay"` once the relay has also acknowledged it as durably stored; `{ devices: k }` once k
 * other member devices of its space have signed a hold receipt for it (spaces with members only; the
 * receipts are membership operations, PROTOCOL.md 10). The commit is saved locally first in any case. A
 * wait can end early by `signal` or `timeout` (ms), or by `db.close()`: it then rejects with
 * `DurabilityPending` and the commit stays saved and keeps syncing.
 */
export interface TransactOptions {
  readonly durable?: "local" | "relay" | { readonly devices: number };
  readonly signal?: AbortSignal;
  readonly timeout?: number;
}

/** Where a commit is known to be durably stored. */
export interface Durability {
  /** Saved in this device's IndexedDB (strict durability). */
  readonly local: boolean;
  /** Acknowledged by the relay as durably stored there. */
  readonly relay: boolean;
  /** Other current member devices that signed a hold receipt for it (`durable: { devices }`). */
  readonly devices: readonly DeviceId[];
}

/**
 * The declarations `openDatabase<M>` takes for the row types `M`: one per collection. Their `text` and
 * `counters` are not checked against `M` (a declaration kept in a variable has lost its literal paths);
 * `collection<T>()` checks them.
 */
export type DeclarationsFor<M extends Record<string, unknown>> = { [K in keyof M]: CollectionDeclaration };

/**
 * Options of `openDatabase`. `C` is the type of `collections`: inferred from the declaration, or
 * `DeclarationsFor<M>` when the app gives its row types.
 */
export interface OpenOptions<C extends Record<string, unknown> = Record<string, CollectionDeclaration>> {
  /** The IndexedDB database name (one per app on a device). */
  name: string;
  /** Collections and their indexes (Dexie syntax), with text and counter fields. */
  collections: C;
  /** Ask the browser to keep the data under storage pressure (`navigator.storage.persist()`); default true. */
  persist?: boolean;
  /**
   * This device's wall clock in ms (default `Date.now`). Only shown to people (commit times) and used in
   * id prefixes: merging never depends on it, which the fuzz tests check with skewed clocks.
   */
  clock?: () => number;
  /** Encrypts the database at rest under a passphrase (README "Encryption at rest"). */
  lock?: LockOptions;
}

/** A space as the app sees it (its key stays inside the database). */
export interface Space {
  readonly id: SpaceId;
  readonly name: string;
  /** The database's own space, made with it. */
  readonly private: boolean;
  /** The region the space is pinned to (`createSpace({ residency })`), when it is. */
  readonly residency?: string;
}

/**
 * One collection inside `transact`: writes join the transaction's commit; reads see its writes. `C`:
 * the counter paths, `Counter`s in `update` drafts.
 */
export interface TransactionCollection<T extends object = Record<string, unknown>, C extends string = never> {
  insert(value: T, options?: InsertOptions): Promise<RecordId>;
  update<R>(id: string, fn: (draft: Draft<T, C>) => Synchronous<R>): Promise<void>;
  delete(id: string): Promise<void>;
  /** Brings a record back to its version right after `commit` (see `Collection.restore`). */
  restore(id: string, commit: CommitId): Promise<boolean>;
  get(id: string): Promise<(T & { id: RecordId }) | undefined>;
}

/** What a `transact` function receives: `tx.<collection>` or `tx.collection(name)`. */
export type TransactionApi<S extends SchemaTypes = UntypedSchema> = {
  collection<K extends keyof S & string>(name: K): TransactionCollection<S[K]["row"], S[K]["counters"]>;
} & { readonly [K in keyof S]: TransactionCollection<S[K]["row"], S[K]["counters"]> };

/** What the compiler knows of a database whose collections it does not know. */
export type UntypedSchema = Record<
  string,
  { row: Record<string, unknown>; indexes: string; counters: never }
>;
