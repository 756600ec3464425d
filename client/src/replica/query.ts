import type { Collection as DexieCollection, IndexableType, WhereClause as DexieWhere } from "dexie";

/**
 * A read-only query over a collection's materialized rows (never Automerge). Mirrors Dexie's
 * `Collection` without its write methods, so rows cannot be changed behind the commit log.
 *
 * @example
 * const firstTen = await db.patients.where("ward").equals("A").offset(10).limit(10).toArray();
 */
export class Query<T> {
  readonly #c: DexieCollection<T, string>;
  constructor(c: DexieCollection<T, string>) {
    this.#c = c;
  }
  /** Keeps rows for which `fn` is true (evaluated in JavaScript after the index range). */
  filter(fn: (row: T) => boolean): Query<T> {
    return new Query(this.#c.filter(fn));
  }
  /** Another condition (OR) on an index. */
  or(index: string): WhereClause<T> {
    return new WhereClause(this.#c.or(index) as unknown as DexieWhere<T, string>);
  }
  /** At most `n` rows. */
  limit(n: number): Query<T> {
    return new Query(this.#c.limit(n));
  }
  /** Skips `n` rows. */
  offset(n: number): Query<T> {
    return new Query(this.#c.offset(n));
  }
  /** Reverse order. */
  reverse(): Query<T> {
    return new Query(this.#c.reverse());
  }
  /** Drops duplicate rows (multi-entry indexes can yield one row once per matching value). */
  distinct(): Query<T> {
    return new Query(this.#c.distinct());
  }
  /** The rows. */
  toArray(): Promise<T[]> {
    return this.#c.toArray();
  }
  /** The first row, or undefined. */
  first(): Promise<T | undefined> {
    return this.#c.first();
  }
  /** The last row, or undefined. */
  last(): Promise<T | undefined> {
    return this.#c.last();
  }
  /** How many rows match. */
  count(): Promise<number> {
    return this.#c.count();
  }
  /** The rows sorted by any field (not only an index), in memory. */
  sortBy(field: string): Promise<T[]> {
    return this.#c.sortBy(field);
  }
  /** The ids of the matching rows. */
  ids(): Promise<string[]> {
    return this.#c.primaryKeys();
  }
}

/** Conditions on one index, as in Dexie. Compound indexes take arrays: `equals(["A", "Ada"])`. */
export class WhereClause<T> {
  readonly #w: DexieWhere<T, string>;
  constructor(w: DexieWhere<T, string>) {
    this.#w = w;
  }
  equals(value: IndexableType): Query<T> {
    return new Query(this.#w.equals(value));
  }
  equalsIgnoreCase(value: string): Query<T> {
    return new Query(this.#w.equalsIgnoreCase(value));
  }
  notEqual(value: IndexableType): Query<T> {
    return new Query(this.#w.notEqual(value));
  }
  anyOf(values: readonly IndexableType[]): Query<T> {
    return new Query(this.#w.anyOf(values as IndexableType[]));
  }
  noneOf(values: readonly IndexableType[]): Query<T> {
    return new Query(this.#w.noneOf(values as IndexableType[]));
  }
  /** Lower bound included, upper bound excluded by default (as in Dexie and IDBKeyRange). */
  between(lower: IndexableType, upper: IndexableType, includeLower = true, includeUpper = false): Query<T> {
    return new Query(this.#w.between(lower, upper, includeLower, includeUpper));
  }
  startsWith(prefix: string): Query<T> {
    return new Query(this.#w.startsWith(prefix));
  }
  startsWithIgnoreCase(prefix: string): Query<T> {
    return new Query(this.#w.startsWithIgnoreCase(prefix));
  }
  startsWithAnyOf(prefixes: readonly string[]): Query<T> {
    return new Query(this.#w.startsWithAnyOf(prefixes as string[]));
  }
  above(value: IndexableType): Query<T> {
    return new Query(this.#w.above(value));
  }
  aboveOrEqual(value: IndexableType): Query<T> {
    return new Query(this.#w.aboveOrEqual(value));
  }
  below(value: IndexableType): Query<T> {
    return new Query(this.#w.below(value));
  }
  belowOrEqual(value: IndexableType): Query<T> {
    return new Query(this.#w.belowOrEqual(value));
  }
}
