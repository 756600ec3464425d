import * as A from "@automerge/automerge";
import { DEFAULT_CONTENT_LIMITS, type ContentLimits } from "../protocol/limits.ts";

/** What a record's content holds, as counted by `checkContent`. */
export interface ContentCount {
  /** Objects, arrays and scalars at every depth. */
  values: number;
  /** UTF-16 units of the strings at `textPaths` (one Automerge op each once built). */
  textUnits: number;
}

/**
 * Walks a record's content (plain JSON, a materialized row or an Automerge document) without
 * recursion, so no nesting can overflow the stack, and returns why it breaks a content limit, or null.
 * Stops at the first breach: the work is bounded by the limits, not by the input.
 *
 * @example
 * const why = checkContent(row, DEFAULT_CONTENT_LIMITS);
 * if (why) throw new ValidationError(`This record is too large to sync: ${why}.`);
 */
export function checkContent(
  root: unknown,
  limits: ContentLimits = DEFAULT_CONTENT_LIMITS,
  textPaths?: ReadonlySet<string>,
  count?: ContentCount,
): string | null {
  const tally = count ?? { values: 0, textUnits: 0 };
  const stack: { v: unknown; depth: number; path: string }[] = [{ v: root, depth: 0, path: "" }];
  while (stack.length > 0) {
    const { v, depth, path } = stack.pop()!;
    if (++tally.values > limits.maxValuesPerRecord)
      return `more than ${limits.maxValuesPerRecord} values in one record`;
    if (typeof v === "string") {
      if (textPaths?.has(path)) tally.textUnits += v.length;
      continue;
    }
    if (!isContainer(v)) continue;
    if (depth >= limits.maxDepth) return `nested deeper than ${limits.maxDepth} levels`;
    const keys = Array.isArray(v) ? null : Object.keys(v);
    const size = keys ? keys.length : (v as unknown[]).length;
    if (size > limits.maxKeysPerObject)
      return `more than ${limits.maxKeysPerObject} keys or elements in one object`;
    if (keys) {
      for (const k of keys)
        stack.push({
          v: (v as Record<string, unknown>)[k],
          depth: depth + 1,
          path: textPaths ? join(path, k) : "",
        });
    } else {
      const list = v as unknown[];
      for (let i = 0; i < list.length; i++)
        stack.push({ v: list[i], depth: depth + 1, path: textPaths ? join(path, String(i)) : "" });
    }
  }
  return null;
}

function join(path: string, key: string): string {
  return path ? `${path}.${key}` : key;
}

/** Objects and arrays; Automerge's scalar wrappers, dates and bytes are single values. */
function isContainer(v: unknown): v is object {
  return (
    v !== null &&
    typeof v === "object" &&
    !(v instanceof A.ImmutableString) &&
    !(v instanceof A.Counter) &&
    !(v instanceof Date) &&
    !(v instanceof Uint8Array)
  );
}

/**
 * The first key of a record's root that Shoal reserves, or null: `id` (the row key always comes from
 * the commit, never from content) and anything starting with `$` (Shoal's own markers; a document may
 * carry `$deleted: true`, the tombstone, when `allowTombstone`; and `allowed`, a key its caller checks).
 */
export function reservedRootKey(root: object, allowTombstone: boolean, allowed?: string): string | null {
  for (const k of Object.keys(root)) {
    // Checked first, so that a caller may allow `id` (a materialized row carries it) and still have
    // every other key checked: returning at `id` used to hide a `$` key after it.
    if (k === allowed) continue;
    if (k === "id") return k;
    if (
      k.startsWith("$") &&
      !(allowTombstone && k === "$deleted" && (root as Record<string, unknown>)[k] === true)
    )
      return k;
  }
  return null;
}

/**
 * True if JSON text nests arrays and objects deeper than `max`, found by one pass over its UTF-8 bytes
 * (strings skipped), so hostile nesting is refused before `JSON.parse` builds anything.
 */
export function jsonNestsDeeper(bytes: Uint8Array, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    if (inString) {
      if (b === 0x5c) i++;
      else if (b === 0x22) inString = false;
    } else if (b === 0x22) inString = true;
    else if (b === 0x5b || b === 0x7b) {
      if (++depth > max) return true;
    } else if (b === 0x5d || b === 0x7d) depth--;
  }
  return false;
}

/**
 * UTF-16 units of the collaborative text in an Automerge document: its plain strings (an immutable
 * string reads as an `ImmutableString`). Walked without recursion; bounded by the content limits.
 *
 * @example
 * if (textUnitsOf(doc) > HEAVY_TEXT_UNITS) applyInLargerRuns();
 */
export function textUnitsOf(doc: unknown): number {
  let units = 0;
  const stack: unknown[] = [doc];
  while (stack.length > 0) {
    const v = stack.pop();
    if (typeof v === "string") units += v.length;
    else if (Array.isArray(v)) for (const x of v) stack.push(x);
    else if (isContainer(v)) for (const k of Object.keys(v)) stack.push((v as Record<string, unknown>)[k]);
  }
  return units;
}
