import type { Table } from "dexie";
import { NotPermitted, SchemaError } from "../errors.ts";
import { AUDIT_VIEWS_COLLECTION } from "./collection-spec.ts";
import type { DocRow } from "./stored-rows.ts";
import type { CommitId, RecordId } from "../types.ts";
import { history, readAt, type HistoryEntry } from "./commit-log.ts";
import { live, type Observable } from "../live/observable.ts";
import type { Row } from "./materialize.ts";
import { Query, WhereClause, shapeOf, wholeIndex } from "./query.ts";
import type { ShapeIndex } from "./query-shape.ts";
import { patchingLive } from "../live/patching-live.ts";
import { eraseRecord } from "../spaces/erase-record.ts";
import type { InsertOptions } from "./transaction.ts";
import type { Draft, FieldPath, IndexName, Synchronous } from "./collection-types.ts";
import { resolveField } from "./resolve-field.ts";
import { add, requestRights, rights, take, type Rights } from "./escrow-ops.ts";

/** A row as the app sees it: its fields plus `id`. */
export type RowOf<T> = T & { readonly id: RecordId };

/** The slice of `Database` a collection needs (avoids a dependency cycle). */
export interface CollectionHost {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  transact<R>(fn: (tx: any) => Promise<R> | R): Promise<R>;
  readonly replica: import("./replica.ts").Replica;
}

/**
 * One collection of a database: writes go through commits, reads through materialized rows.
 *
 * `T` is the row type (without `id`), `I` the index names `where` and `orderBy` accept (by default
 * every name a collection of `T` could declare; the declared ones when `openDatabase` could read the
 * declaration), `C` the counter paths (`Counter`s in `update` drafts).
 *
 * @example
 * const id = await db.patients.insert({ name: "Ada", ward: "A", tags: ["diabetic"], notes: "" });
 * await db.patients.update(id, (p) => { p.notes = "Seen today."; });
 * const inWardA = await db.patients.where("ward").equals("A").toArray();
 */
export class Collection<
  T extends object = Record<string, unknown>,
  I extends string = IndexName<T>,
  C extends string = never,
> {
  readonly name: string;
  readonly #host: CollectionHost;

  constructor(host: CollectionHost, name: string) {
    this.#host = host;
    this.name = name;
  }

  get #table(): Table<RowOf<T>, string> {
    this.#host.replica.assertOpen();
    return this.#host.replica.dexie.table(this.name);
  }

  /** Creates a record in its own commit and returns its id (UUIDv7). */
  insert(value: T, options?: InsertOptions): Promise<RecordId> {
    return this.#host.transact((tx) =>
      tx.collection(this.name).insert(value as Record<string, unknown>, options),
    );
  }

  /**
   * Changes a record with a synchronous function over a draft of it (an Automerge change). Assigning a
   * string to a text field merges character by character with concurrent edits; a declared counter
   * is a `Counter` in the draft. An async function does not compile (and throws `ValidationError`).
   */
  update<R>(id: string, fn: (draft: Draft<T, C>) => Synchronous<R>): Promise<void> {
    return this.#host.transact((tx) =>
      tx.collection(this.name).update(id, fn as (d: Record<string, unknown>) => void),
    );
  }

  /**
   * Resolves a conflicted inbox field (declared `conflicts: { field: "inbox" }`) to `value`, in its own
   * commit, attributed like any edit: a plain write that supersedes every concurrent value this device
   * holds, so the conflict leaves `db.conflicts()` on every device that receives it. `value` may be one
   * of the candidates or anything else; `undefined` removes the field. Two devices resolving the same
   * conflict concurrently make a new conflict (of their two resolutions).
   *
   * @example
   * await db.patients.resolve(id, "dose", 5);
   */
  resolve(id: string, field: FieldPath<T>, value: unknown): Promise<void> {
    const spec = this.#host.replica.specs.get(this.name);
    if (!spec) return Promise.reject(new SchemaError(`No collection "${this.name}".`));
    return this.#host.transact((tx) =>
      tx
        .collection(this.name)
        .update(id, (d: Record<string, unknown>) => resolveField(d, spec, field, value)),
    );
  }

  /**
   * Takes `n` from a bounded counter (`counters: { doses: { min: 0 } }`), in its own commit, within the
   * rights this device holds: works offline, and never lets the value go below `min` once every
   * device's takes merge. Beyond the rights held here it throws `InsufficientRights` at once (nothing
   * taken) and asks the other devices for the shortfall; they grant it when both are online.
   *
   * @example
   * try { await db.sites.take(id, "doses", 1); } catch (e) { if (e instanceof InsufficientRights) warn(e.message); }
   */
  take(id: string, field: string, n = 1): Promise<void> {
    return take(this.#host, this.name, id, field, n);
  }

  /** Adds `n` to a bounded counter, in its own commit; this device holds the rights to what it adds. */
  add(id: string, field: string, n = 1): Promise<void> {
    return add(this.#host, this.name, id, field, n);
  }

  /**
   * A bounded counter as this device sees it: its `value`, the rights `held` here (what `take` may
   * take offline), the `total` all devices may take (`value - min`), and what this device `wanted`
   * and was not granted yet. The row itself carries the same, per device, under `$escrow`.
   */
  rights(id: string, field: string): Promise<Rights> {
    return rights(this.#host, this.name, id, field);
  }

  /**
   * Asks the other devices for rights, so that this device holds `amount` of a bounded counter (before
   * going offline, say). The request syncs like any write; devices holding spare rights grant it.
   */
  requestRights(id: string, field: string, amount: number): Promise<void> {
    return requestRights(this.#host, this.name, id, field, amount);
  }

  /** Deletes a record (a tombstone; a concurrent edit elsewhere does not bring it back). */
  delete(id: string): Promise<void> {
    return this.#host.transact((tx) => tx.collection(this.name).delete(id));
  }

  /** The row with this id, or undefined (also when deleted). */
  get(id: string): Promise<RowOf<T> | undefined> {
    return this.#table.get(id);
  }

  /**
   * The row with this id, read for a person to see it: like `get`, and in a collection declared with
   * `auditViews: true` it also records a view event (this device, the record, the device's claimed
   * time) as a commit in the record's space: synced and sealed like any write, carried by
   * `db.exportAudit` and shown by `shoal-audit verify`. A device that may not write there (a reader)
   * cannot record it: the row is returned and no event is written.
   *
   * @example
   * const chart = await db.patients.open(id); // "Dr. Ada viewed patients/<id>" in the audit
   */
  async open(id: string): Promise<RowOf<T> | undefined> {
    const row = await this.get(id);
    if (!row || !this.#host.replica.specs.get(this.name)?.auditViews) return row;
    const doc = await this.#host.replica.dexie.table<DocRow>("_docs").get(id);
    if (!doc) return row;
    try {
      await this.#host.transact((tx) =>
        tx
          .collection(AUDIT_VIEWS_COLLECTION)
          .insert({ collection: this.name, record: id }, { space: doc.space }),
      );
    } catch (e) {
      if (!(e instanceof NotPermitted)) throw e;
    }
    return row;
  }

  #index(index: string): string {
    const spec = this.#host.replica.specs.get(this.name)!;
    if (index !== "id" && !spec.indexes.some((i) => i.name === index || i.src === index)) {
      throw new SchemaError(
        `"${index}" is not an index of "${this.name}" (declared: id${spec.indexes.map((i) => `, ${i.src}`).join("")}).`,
      );
    }
    return index.replace(/^\*/, "");
  }

  /** The declared index a query names, for query shapes (see `QueryShape`). */
  #shapeIndex(index: string): ShapeIndex {
    if (index === "id") return "id";
    const spec = this.#host.replica.specs.get(this.name)!;
    return spec.indexes.find((i) => i.name === index || i.src === index)!;
  }

  /** Starts an indexed query. Throws `SchemaError` for an index the collection does not declare. */
  where(index: I): WhereClause<RowOf<T>, I> {
    return new WhereClause(this.#table.where(this.#index(index)), this.#shapeIndex(index));
  }

  /** All rows ordered by an index. */
  orderBy(index: I): Query<RowOf<T>, I> {
    return wholeIndex(this.#table.orderBy(this.#index(index)), this.#shapeIndex(index));
  }

  /** All rows, in id (creation time) order. */
  all(): Query<RowOf<T>, I> {
    return wholeIndex(this.#table.toCollection(), "id");
  }

  /** All rows. */
  toArray(): Promise<RowOf<T>[]> {
    return this.#table.toArray();
  }

  /** How many records (not deleted). */
  count(): Promise<number> {
    return this.#table.count();
  }

  /** Rows passing a JavaScript predicate (a full scan: prefer an index). */
  filter(fn: (row: RowOf<T>) => boolean): Query<RowOf<T>, I> {
    return this.all().filter(fn);
  }

  /**
   * A live query over this collection: `fn` builds a query (or any async read of it) and the
   * observable emits its result now and after every commit that touches what it read.
   *
   * @example
   * db.patients.live((c) => c.where("name").startsWith("A")).subscribe((rows) => render(rows));
   */
  live(fn?: (c: this) => Query<RowOf<T>, I>): Observable<RowOf<T>[]>;
  live<R>(fn: (c: this) => Promise<R> | R): Observable<R>;
  live(fn: (c: this) => unknown = (c) => c.all()): Observable<unknown> {
    let first: unknown;
    try {
      first = fn(this);
    } catch {
      // Reported through the observable, as every later failure of `fn` is (it runs again there).
    }
    if (first instanceof Query && shapeOf(first)) {
      // A query with a shape is kept up to date row by row: a commit costs a read of the rows it changed,
      // not a new run of the whole query (which grows with the result).
      let pending: Query<RowOf<T>> | undefined = first as Query<RowOf<T>>;
      return patchingLive(
        this.#host.replica.dexie,
        this.name,
        () => {
          const q = pending ?? (fn(this) as Query<RowOf<T>>);
          pending = undefined;
          return q;
        },
        this.#host.replica.localEdits,
      );
    }
    // A query reads nothing until `toArray`, so the one built above can serve the first run; any other
    // result has already read outside the live query's tracking, so it is dropped and `fn` runs again.
    let pending: Query<unknown> | undefined;
    if (first instanceof Query) pending = first;
    else if (first instanceof Promise) first.catch(() => {});
    return live(async () => {
      const q = pending ?? fn(this);
      pending = undefined;
      return q instanceof Query ? await q.toArray() : await q;
    });
  }

  /**
   * Erases a record for good (GDPR Art. 17; an admin of its space): a signed `erase` operation in the
   * space's membership log, after which every device that applies it purges the record, its document
   * and its history, refuses it from any source, and writes a signed receipt (`db.erasure(id)` counts
   * them). Resolves with the operation's id once this device has purged it. See PROTOCOL.md 12 for what
   * it guarantees and what it cannot.
   */
  erase(id: string): Promise<string> {
    return eraseRecord(this.#host.replica, this.name, id);
  }

  /**
   * The commits that changed this record, oldest first: device, time, fields, and whether the device's
   * authorship is verified (its signature). The audit trail.
   */
  history(id: string): Promise<HistoryEntry[]> {
    this.#host.replica.assertOpen();
    return history(this.#host.replica.dexie, id, this.#host.replica.device);
  }

  /**
   * Brings the record back to its version right after `commit` (the row `readAt(id, commit)` gives) as
   * a NEW commit by this device: history is kept, nothing is rewritten. Text fields are diffed and
   * counters incremented by the difference, so the restore merges with concurrent edits like any edit;
   * a record deleted since is recreated under the same id (a concurrent delete elsewhere still wins);
   * restoring to a delete deletes it. Resolves whether anything changed. Needs the writer role
   * (`NotPermitted`); `NotFound` if the commit did not change the record.
   *
   * @example
   * const [first] = await db.patients.history(id);
   * await db.patients.restore(id, first!.commit);
   */
  restore(id: string, commit: CommitId): Promise<boolean> {
    return this.#host.transact((tx) => tx.collection(this.name).restore(id, commit));
  }

  /** The record as it was right after `commit`. */
  readAt(id: string, commit: CommitId): Promise<RowOf<T>> {
    this.#host.replica.assertOpen();
    return readAt(this.#host.replica.dexie, id, commit) as Promise<Row> as Promise<RowOf<T>>;
  }
}
