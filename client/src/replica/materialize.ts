import * as A from "@automerge/automerge";
import { CONFLICTED_FIELD, CONFLICTS_FIELD, conflictsOf } from "./conflict-values.ts";
import { ESCROW_FIELD, escrowSummary } from "./escrow.ts";

/** The field that marks a record as deleted inside its document. Never materialized. */
export const DELETED_FIELD = "$deleted";

/** A materialized row: the record's JSON values plus its `id`. */
export type Row = { id: string } & Record<string, unknown>;

/**
 * Turns a record's Automerge document into the plain row stored in its collection's table, so queries
 * never touch Automerge: collaborative text and immutable strings become strings, counters numbers.
 * Dates and byte arrays stay as they are (IndexedDB stores both). The collection's `inbox` fields that
 * hold differing concurrent values are listed under `$conflicts`, with `$conflicted: 1` for the index
 * `db.conflicts()` reads (see `conflictsOf`); the field itself keeps Automerge's winner. Bounded
 * counters read as their value, with every device's rights under `$escrow` (see escrow.ts).
 */
export function materialize(id: string, doc: A.Doc<unknown>, inbox?: ReadonlySet<string>): Row {
  const row: Row = { id };
  for (const [k, v] of Object.entries(doc as Record<string, unknown>)) {
    // Shoal's markers, and `id`: the row key is the record's id, never a field a change could set.
    if (k.startsWith("$") || k === "id") continue;
    row[k] = plain(v);
  }
  const conflicts = inbox && inbox.size > 0 ? conflictsOf(doc, inbox, plain) : undefined;
  if (conflicts) {
    row[CONFLICTS_FIELD] = conflicts;
    row[CONFLICTED_FIELD] = 1;
  }
  const escrow = escrowSummary(doc);
  if (escrow) {
    Object.assign(row, escrow.values);
    row[ESCROW_FIELD] = escrow.summary;
  }
  return row;
}

/** True if the document carries a delete (tombstone). */
export function isDeleted(doc: A.Doc<unknown>): boolean {
  return (doc as Record<string, unknown>)[DELETED_FIELD] === true;
}

function plain(v: unknown): unknown {
  if (v === null || typeof v !== "object") return v;
  if (v instanceof A.ImmutableString) return (v as A.ImmutableString).val;
  if (v instanceof A.Counter) return v.value;
  if (v instanceof Date || v instanceof Uint8Array) return v;
  if (Array.isArray(v)) return v.map(plain);
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) out[k] = plain(x);
  return out;
}
