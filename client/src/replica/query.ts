import type { Collection as DexieCollection, IndexableType, WhereClause as DexieWhere } from "dexie";
import type { FieldPath } from "./collection-types.ts";
import { keyFunction, ranges, type QueryShape, type ShapeIndex } from "./query-shape.ts";

// Kept outside the classes so that the shape is no part of the public API.
const shapes = new WeakMap<object, QueryShape>();

/** The shape of a query (see `QueryShape`), or undefined when it has none. */
export function shapeOf(q: Query<unknown>): QueryShape | undefined {
  return shapes.get(q);
}

/** A query over `c`, with `shape` when it has one. */
function query<T, I extends string>(
  c: DexieCollection<T, string>,
  shape: QueryShape | undefined,
): Query<T, I> {
  const q = new Query<T, I>(c);
  if (shape) shapes.set(q, shape);
  return q;
}

/**
 * A read-only query over a collection's materialized rows (never Automerge). Mirrors Dexie's
 * `Collection` without its write methods, so rows cannot be changed behind the commit log. `T` is the
 * row type, `I` the index names `or` accepts.
 *
 * @example
 * const firstTen = await db.patients.where("ward").equals("A").offset(10).limit(10).toArray();
 */
export class Query<T, I extends string = string> {
  readonly #c: DexieCollection<T, string>;
  constructor(c: DexieCollection<T, string>) {
    this.#c = c;
  }
  /** Keeps rows for which `fn` is true (evaluated in JavaScript after the index range). */
  filter(fn: (row: T) => boolean): Query<T, I> {
    const shape = shapes.get(this);
    return query(this.#c.filter(fn), shape && { ...shape, filters: [...shape.filters, fn] });
  }
  /** Another condition (OR) on an index. */
  or(index: I): WhereClause<T, I> {
    return new WhereClause<T, I>(this.#c.or(index) as unknown as DexieWhere<T, string>);
  }
  /** At most `n` rows. */
  limit(n: number): Query<T, I> {
    return new Query<T, I>(this.#c.limit(n));
  }
  /** Skips `n` rows. */
  offset(n: number): Query<T, I> {
    return new Query<T, I>(this.#c.offset(n));
  }
  /** Reverse order. */
  reverse(): Query<T, I> {
    return new Query<T, I>(this.#c.reverse());
  }
  /** Drops duplicate rows (multi-entry indexes can yield one row once per matching value). */
  distinct(): Query<T, I> {
    return new Query<T, I>(this.#c.distinct());
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
  /** The rows sorted by any field of the row type (not only an index), in memory. */
  sortBy(field: FieldPath<T>): Promise<T[]> {
    return this.#c.sortBy(field as string);
  }
  /** The ids of the matching rows. */
  ids(): Promise<string[]> {
    return this.#c.primaryKeys();
  }
}

/** Conditions on one index, as in Dexie. Compound indexes take arrays: `equals(["A", "Ada"])`. */
export class WhereClause<T, I extends string = string> {
  readonly #w: DexieWhere<T, string>;
  readonly #keyOf: QueryShape["keyOf"] | undefined;
  /** `index`: what the clause walks, when a live query may follow it row by row (see `QueryShape`). */
  constructor(w: DexieWhere<T, string>, index?: ShapeIndex) {
    this.#w = w;
    this.#keyOf = index === undefined ? undefined : keyFunction(index);
  }
  #shaped(c: DexieCollection<T, string>, inRange: QueryShape["inRange"]): Query<T, I> {
    return query(c, this.#keyOf && { keyOf: this.#keyOf, inRange, filters: [] });
  }
  equals(value: IndexableType): Query<T, I> {
    return this.#shaped(this.#w.equals(value), ranges.equals(value));
  }
  equalsIgnoreCase(value: string): Query<T, I> {
    return new Query<T, I>(this.#w.equalsIgnoreCase(value));
  }
  notEqual(value: IndexableType): Query<T, I> {
    return new Query<T, I>(this.#w.notEqual(value));
  }
  anyOf(values: readonly IndexableType[]): Query<T, I> {
    return this.#shaped(this.#w.anyOf(values as IndexableType[]), ranges.anyOf([...values]));
  }
  noneOf(values: readonly IndexableType[]): Query<T, I> {
    return new Query<T, I>(this.#w.noneOf(values as IndexableType[]));
  }
  /** Lower bound included, upper bound excluded by default (as in Dexie and IDBKeyRange). */
  between(
    lower: IndexableType,
    upper: IndexableType,
    includeLower = true,
    includeUpper = false,
  ): Query<T, I> {
    return this.#shaped(
      this.#w.between(lower, upper, includeLower, includeUpper),
      ranges.between(lower, upper, includeLower, includeUpper),
    );
  }
  startsWith(prefix: string): Query<T, I> {
    return this.#shaped(this.#w.startsWith(prefix), ranges.startsWith(prefix));
  }
  startsWithIgnoreCase(prefix: string): Query<T, I> {
    return new Query<T, I>(this.#w.startsWithIgnoreCase(prefix));
  }
  startsWithAnyOf(prefixes: readonly string[]): Query<T, I> {
    return new Query<T, I>(this.#w.startsWithAnyOf(prefixes as string[]));
  }
  above(value: IndexableType): Query<T, I> {
    return this.#shaped(this.#w.above(value), ranges.above(value, false));
  }
  aboveOrEqual(value: IndexableType): Query<T, I> {
    return this.#shaped(this.#w.aboveOrEqual(value), ranges.above(value, true));
  }
  below(value: IndexableType): Query<T, I> {
    return this.#shaped(this.#w.below(value), ranges.below(value, false));
  }
  belowOrEqual(value: IndexableType): Query<T, I> {
    return this.#shaped(this.#w.belowOrEqual(value), ranges.below(value, true));
  }
}

/** A query over every row of `c` that has a key in `index`, in (key, id) order. */
export function wholeIndex<T, I extends string>(
  c: DexieCollection<T, string>,
  index: ShapeIndex,
): Query<T, I> {
  const keyOf = keyFunction(index);
  return query(c, keyOf && { keyOf, inRange: ranges.any(), filters: [] });
}
