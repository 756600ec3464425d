import * as A from "@automerge/automerge";
import type { Row } from "./materialize.ts";

/**
 * A record's first version as plain JSON, with which fields are text and counters. Inserts travel and
 * are stored in this form, and every replica that needs the record's Automerge document (to edit or
 * merge it) builds the same first change from it: same actor (from the record id), time 0, fields in
 * sorted order, so the change is byte-identical everywhere and later changes that depend on it apply.
 * Inserting, syncing and bootstrapping records therefore cost no Automerge work at all (TOOLCHAIN.md:
 * 0.45-1.5 ms per record otherwise).
 */
export interface Creation {
  readonly json: Record<string, unknown>;
  readonly text: readonly string[];
  readonly counters: readonly string[];
}

/** Heads of a document that holds only its creation, before anyone built it. Not a hash: never clashes. */
export const CREATION_HEADS: readonly string[] = Object.freeze(["~creation"]);

/**
 * The creation form of an insert, or null when a value cannot round-trip through JSON exactly (dates,
 * bytes, -0): those records are created with Automerge at once.
 */
export function creationOf(
  value: Record<string, unknown>,
  text: ReadonlySet<string>,
  counters: ReadonlySet<string>,
): Creation | null {
  const usedText: string[] = [];
  const usedCounters: string[] = [];
  const walk = (v: unknown, path: string): unknown => {
    if (v === null || typeof v === "boolean") return v;
    if (typeof v === "string") {
      if (text.has(path)) usedText.push(path);
      return v;
    }
    if (typeof v === "number") {
      if (!Number.isFinite(v) || Object.is(v, -0)) throw NOT_JSON;
      if (counters.has(path)) usedCounters.push(path);
      return v;
    }
    if (Array.isArray(v)) return v.map((x, i) => walk(x, `${path}.${i}`));
    if (
      typeof v === "object" &&
      (Object.getPrototypeOf(v) === Object.prototype || Object.getPrototypeOf(v) === null)
    ) {
      const out: Record<string, unknown> = {};
      for (const k of Object.keys(v as object).sort()) {
        const x = (v as Record<string, unknown>)[k];
        if (x !== undefined) out[k] = walk(x, path ? `${path}.${k}` : k);
      }
      return out;
    }
    throw NOT_JSON;
  };
  try {
    const json = walk(value, "") as Record<string, unknown>;
    return { json, text: usedText.sort(), counters: usedCounters.sort() };
  } catch (e) {
    if (e === NOT_JSON) return null;
    throw e;
  }
}

const NOT_JSON = Symbol("not JSON");

/** The Automerge actor of a record's creation change: the record id's 16 bytes. */
export function creationActor(id: string): string {
  return id.replaceAll("-", "");
}

/**
 * Builds a record's document from its creation, deterministically, then hands it to `actor` for
 * further changes.
 */
export function buildFromCreation(id: string, c: Creation, actor: string): A.Doc<unknown> {
  const text = new Set(c.text);
  const counters = new Set(c.counters);
  const convert = (v: unknown, path: string): unknown => {
    if (typeof v === "string") return text.has(path) ? v : new A.ImmutableString(v);
    if (typeof v === "number") return counters.has(path) ? new A.Counter(v) : v;
    if (Array.isArray(v)) return v.map((x, i) => convert(x, `${path}.${i}`));
    if (v !== null && typeof v === "object") {
      const out: Record<string, unknown> = {};
      for (const k of Object.keys(v).sort())
        out[k] = convert((v as Record<string, unknown>)[k], path ? `${path}.${k}` : k);
      return out;
    }
    return v;
  };
  const root = convert(c.json, "") as Record<string, unknown>;
  const doc = A.change(A.init<Record<string, unknown>>({ actor: creationActor(id) }), { time: 0 }, (d) => {
    for (const k of Object.keys(root).sort()) d[k] = root[k];
  });
  return A.clone(doc, { actor });
}

/**
 * The row of a record that holds only its creation (keys sorted, as Automerge orders map keys). The row
 * key is the record's id, never a field of the content (receivers also refuse a creation with `id`).
 */
export function creationRow(id: string, c: Creation): Row {
  const row: Row = { id };
  for (const k of Object.keys(c.json)) if (k !== "id") row[k] = c.json[k];
  return row;
}
