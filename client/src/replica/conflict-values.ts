import * as A from "@automerge/automerge";
import { sameValue } from "../live/same-value.ts";

/** The reserved row field listing an inbox field's concurrent values (see `RowConflicts`). */
export const CONFLICTS_FIELD = "$conflicts";
/** The reserved, indexed row field set to 1 while any inbox field is conflicted, absent otherwise. */
export const CONFLICTED_FIELD = "$conflicted";
/**
 * Most values listed per conflicted field. A hostile member can write a field from many Automerge
 * actors at once, each value concurrent with the others; the row and `db.conflicts()` stay bounded and
 * count the rest in `omitted`. Every replica keeps the same ones (the first in operation order).
 */
export const MAX_CONFLICT_VALUES = 16;

/** One concurrent value of an inbox field, as the row holds it. */
export interface ConflictValue {
  readonly value: unknown;
  /**
   * The Automerge operation that wrote it (`counter@actor`): the same on every replica, and what
   * `db.conflicts()` follows back to the commit (device, person, time) that made it.
   */
  readonly op: string;
}

/** An inbox field's concurrent values, in operation order (latest first), and how many were left out. */
export interface FieldConflict {
  readonly values: readonly ConflictValue[];
  readonly omitted: number;
}

/** A row's `$conflicts`: per conflicted inbox field path, its values. */
export type RowConflicts = Readonly<Record<string, FieldConflict>>;

/**
 * The conflicts of a document's inbox fields: a field is conflicted when Automerge holds concurrent
 * values for it (writes that did not see each other) and at least two differ. Equal concurrent values
 * agree, so they are no conflict. Undefined when no field is conflicted. Cheap when none is:
 * `A.getConflicts` per inbox field.
 *
 * @example
 * const c = conflictsOf(doc, new Set(["dose"]), plain); // { dose: { values: [{ value: 10, op }, { value: 5, op }], omitted: 0 } }
 */
export function conflictsOf(
  doc: A.Doc<unknown>,
  inbox: ReadonlySet<string>,
  plain: (v: unknown) => unknown,
): RowConflicts | undefined {
  let out: Record<string, FieldConflict> | undefined;
  for (const path of inbox) {
    const parts = path.split(".");
    const key = parts.pop()!;
    let parent: unknown = doc;
    for (const p of parts) {
      parent = isMap(parent) ? parent[p] : undefined;
    }
    if (!isMap(parent) || !(key in parent)) continue;
    const all = A.getConflicts(parent as A.Doc<unknown>, key);
    if (!all) continue;
    const entries = Object.entries(all);
    if (entries.length < 2) continue;
    entries.sort(([a], [b]) => compareOps(b, a));
    const values = entries.map(([op, v]) => ({ value: plain(v), op }));
    if (values.every((v) => sameValue(v.value, values[0]!.value))) continue;
    (out ??= {})[path] = {
      values: values.slice(0, MAX_CONFLICT_VALUES),
      omitted: Math.max(0, values.length - MAX_CONFLICT_VALUES),
    };
  }
  return out;
}

/** Automerge's operation order: by counter, then by actor. */
export function compareOps(a: string, b: string): number {
  const [ca, aa = ""] = splitOp(a);
  const [cb, ab = ""] = splitOp(b);
  if (ca !== cb) return ca - cb;
  return aa < ab ? -1 : aa > ab ? 1 : 0;
}

/** `counter@actor` as its counter and actor. */
export function splitOp(op: string): [number, string] {
  const at = op.indexOf("@");
  return [Number(op.slice(0, at)), op.slice(at + 1)];
}

function isMap(v: unknown): v is Record<string, unknown> {
  return (
    v !== null &&
    typeof v === "object" &&
    !Array.isArray(v) &&
    !(v instanceof Date) &&
    !(v instanceof Uint8Array) &&
    !(v instanceof A.ImmutableString) &&
    !(v instanceof A.Counter)
  );
}

/** A row without its conflict listing (`$conflicts`, `$conflicted`): its values alone. */
export function withoutConflicts<R extends Record<string, unknown>>(row: R): R {
  if (!(CONFLICTS_FIELD in row) && !(CONFLICTED_FIELD in row)) return row;
  const { [CONFLICTS_FIELD]: _c, [CONFLICTED_FIELD]: _f, ...rest } = row;
  return rest as R;
}

/**
 * The conflict listing of a row read from a collection (its `$conflicts`), or undefined when none of
 * its inbox fields is conflicted.
 *
 * @example
 * const doses = rowConflicts(await db.patients.get(id))?.dose?.values.map((v) => v.value);
 */
export function rowConflicts(row: object | undefined): RowConflicts | undefined {
  return (row as Record<string, unknown> | undefined)?.[CONFLICTS_FIELD] as RowConflicts | undefined;
}
