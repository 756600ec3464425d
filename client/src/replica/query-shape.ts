import { cmp, type IndexableType } from "dexie";
import type { IndexSpec } from "./collection-spec.ts";

/**
 * What a query selects, in a form JavaScript can evaluate on one row: the index it walks, which keys of
 * that index it takes, and the filters after it. Live queries use it to patch their result with the
 * rows a commit changed instead of running the whole query again. Only queries whose result is "every
 * row with a key in the range, in (key, id) order" have a shape; `limit`, `offset`, `reverse`,
 * `distinct`, `or`, multi-entry indexes and the case-insensitive clauses have none.
 */
export interface QueryShape {
  /** The row's key in the index, or undefined when IndexedDB would not index the row there. */
  readonly keyOf: (row: Record<string, unknown>) => IndexableType | undefined;
  /** Whether a key of the index is in the query's range. */
  readonly inRange: (key: IndexableType) => boolean;
  readonly filters: readonly ((row: never) => boolean)[];
}

/** The index a query walks: the primary key (`id`) or a declared plain or compound index. */
export type ShapeIndex = "id" | IndexSpec;

/** The key function of an index, or undefined for one a shape cannot follow (multi-entry). */
export function keyFunction(index: ShapeIndex): QueryShape["keyOf"] | undefined {
  if (index === "id") return (row) => validKey(row.id);
  if (index.multi) return undefined;
  if (index.compound) {
    const fields = index.name.slice(1, -1).split("+");
    return (row) => {
      const parts = fields.map((f) => validKey(fieldAt(row, f)));
      return parts.every((p) => p !== undefined) ? (parts as IndexableType) : undefined;
    };
  }
  return (row) => validKey(fieldAt(row, index.name));
}

/** Whether `row` belongs to the result of a query of this shape. */
export function rowMatches(shape: QueryShape, row: Record<string, unknown>): boolean {
  const key = shape.keyOf(row);
  return key !== undefined && shape.inRange(key) && shape.filters.every((f) => f(row as never));
}

/** Orders two rows as the query returns them: by index key, then by id. */
export function compareRows(
  shape: QueryShape,
  a: Record<string, unknown>,
  b: Record<string, unknown>,
): number {
  return cmp(shape.keyOf(a), shape.keyOf(b)) || cmp(a.id, b.id);
}

/** Range tests for the where-clause methods that have a shape. */
export const ranges = {
  equals: (value: IndexableType) => (key: IndexableType) => safeCmp(key, value) === 0,
  anyOf: (values: readonly IndexableType[]) => (key: IndexableType) =>
    values.some((v) => safeCmp(key, v) === 0),
  between:
    (lower: IndexableType, upper: IndexableType, includeLower: boolean, includeUpper: boolean) =>
    (key: IndexableType) => {
      const lo = safeCmp(key, lower);
      const hi = safeCmp(key, upper);
      return (lo > 0 || (includeLower && lo === 0)) && (hi < 0 || (includeUpper && hi === 0));
    },
  above: (value: IndexableType, orEqual: boolean) => (key: IndexableType) => {
    const c = safeCmp(key, value);
    return c > 0 || (orEqual && c === 0);
  },
  below: (value: IndexableType, orEqual: boolean) => (key: IndexableType) => {
    const c = safeCmp(key, value);
    return c < 0 || (orEqual && c === 0);
  },
  startsWith: (prefix: string) => (key: IndexableType) => typeof key === "string" && key.startsWith(prefix),
  any: () => () => true,
};

/** `cmp` that treats an invalid bound as matching nothing (Dexie's query would throw or be empty). */
function safeCmp(a: IndexableType, b: IndexableType): number {
  try {
    return cmp(a, b);
  } catch {
    return Number.NaN;
  }
}

function fieldAt(row: Record<string, unknown>, path: string): unknown {
  let v: unknown = row;
  for (const part of path.split(".")) {
    if (v === null || typeof v !== "object") return undefined;
    v = (v as Record<string, unknown>)[part];
  }
  return v;
}

/** The value as an IndexedDB key, or undefined where IndexedDB would leave the row out of the index. */
function validKey(v: unknown): IndexableType | undefined {
  if (typeof v === "string") return v;
  if (typeof v === "number") return Number.isNaN(v) ? undefined : v;
  if (v instanceof Date) return Number.isNaN(v.getTime()) ? undefined : v;
  if (ArrayBuffer.isView(v) || v instanceof ArrayBuffer) return v as IndexableType;
  if (Array.isArray(v)) {
    const parts = v.map(validKey);
    return parts.every((p) => p !== undefined) ? (parts as IndexableType) : undefined;
  }
  return undefined;
}
