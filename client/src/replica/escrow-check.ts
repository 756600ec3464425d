import * as A from "@automerge/automerge";
import type { CollectionSpec } from "./collection-spec.ts";
import { ESCROW_KEY, readEscrow, rightsOf } from "./escrow.ts";

/** Why a commit's escrow writes are refused (quarantine reason `escrow`). */
export interface EscrowProblem {
  readonly reason: "escrow";
  readonly message: string;
}

/** Where an object of a record's escrow sits. */
type Place =
  | { kind: "escrow" }
  | { kind: "field"; field: string }
  | { kind: "rows"; field: string }
  | { kind: "row"; field: string; device: string }
  | { kind: "given"; field: string; device: string };

/** The change operations `escrowProblem` reads (the shape `A.decodeChange` gives). */
interface Op {
  action: string;
  obj: string;
  key?: string;
  value?: unknown;
  datatype?: string;
  pred?: string[];
}

const COUNTERS = new Set(["inc", "dec", "want", "waived"]);

/**
 * Checks what one commit of device `author` does to one record's escrow (escrow.ts), the same way on
 * every replica whatever order commits arrive in, so every replica gives the same verdict:
 * - `$escrow`, its fields, their `min` (the declared bound) and `rows` are made only by the record's
 *   creation; nothing is ever deleted or overwritten (every write has no predecessor, or is an
 *   increment);
 * - nothing sets a bounded field itself at the root (its value is its escrow's);
 * - the author writes only its own row (keyed by the commit's signed device id), and only by
 *   creating counters at zero or more and by increments of zero or more;
 * - in the document as of the commit itself (its own causal past, not whatever else this replica holds),
 *   the author's rights on every bounded field are zero or more.
 * Other devices' rights only grow by another device's commit, so a device whose every commit passes
 * never holds fewer than zero rights on any replica, and the value never crosses its bound.
 * Returns the problem, or null.
 */
export function escrowProblem(
  spec: CollectionSpec | undefined,
  author: string,
  op: "insert" | "update" | "delete",
  changes: readonly Uint8Array[],
  after: A.Doc<unknown> | null,
  create?: { readonly json: object },
): EscrowProblem | null {
  if (!spec?.bounded) return null;
  const refuse = (message: string): EscrowProblem => ({ reason: "escrow", message });
  // A bounded counter's value is its escrow's: a plain value at its key would show instead.
  const plain = create ? [...spec.bounded.keys()].find((f) => Object.hasOwn(create.json, f)) : undefined;
  if (plain) return refuse(`its creation sets the bounded counter "${plain}" as a plain value`);
  if (changes.length === 0 || after === null) return null;
  const decoded: A.DecodedChange[] = [];
  for (const bytes of changes) {
    try {
      decoded.push(A.decodeChange(bytes as A.Change));
    } catch (e) {
      return refuse(`a change cannot be decoded: ${(e as Error)?.message ?? e}`);
    }
  }
  let view: unknown;
  try {
    // Every change of the commit as a head: a commit whose changes do not chain is read whole.
    view = A.view(
      after,
      decoded.map((d) => d.hash!),
    );
  } catch (e) {
    return refuse(`its own version cannot be read: ${(e as Error)?.message ?? e}`);
  }
  const places = escrowPlaces(view);
  // The record's creation: an insert whose first change starts the document (no dependency). Read from
  // the commit alone, not from whether this replica held the record already, so the verdict on a
  // second "creation" of one record id does not depend on which arrived first.
  const creating = op === "insert" && (decoded[0]!.deps ?? []).length === 0;
  for (const ch of decoded) {
    for (const o of ch.ops as unknown as Op[]) {
      const why = opProblem(o, places, spec, author, creating);
      if (why) return refuse(why);
    }
  }
  for (const field of spec.bounded.keys()) {
    const st = readEscrow(view, field);
    if (!st) continue;
    const held = rightsOf(st, author);
    if (held < 0) return refuse(`it leaves its device with ${held} rights on "${field}" (overspent)`);
  }
  return null;
}

/** Why one operation may not touch the escrow, or null (also for operations outside it). */
function opProblem(
  o: Op,
  places: Map<string, Place>,
  spec: CollectionSpec,
  author: string,
  creating: boolean,
): string | null {
  const fresh = (o.pred ?? []).length === 0;
  const makesMap = o.action === "makeMap" && fresh;
  if (o.obj === "_root") {
    if (o.key !== undefined && spec.bounded!.has(o.key))
      return `it sets the bounded counter "${o.key}" directly`;
    if (o.key !== ESCROW_KEY) return null;
    return creating && makesMap ? null : "it writes $escrow outside the record's creation";
  }
  const place = places.get(o.obj);
  if (!place) return null;
  const key = o.key ?? "";
  switch (place.kind) {
    case "escrow":
      return creating && makesMap && spec.bounded!.has(key)
        ? null
        : `it writes escrow "${key}" outside the record's creation or for a field that is not a bounded counter`;
    case "field": {
      const min = spec.bounded!.get(place.field)?.min;
      const ok =
        creating &&
        fresh &&
        ((key === "min" && o.action === "set" && o.datatype !== "counter" && o.value === min) ||
          (key === "rows" && o.action === "makeMap"));
      return ok ? null : `it changes the bound or the rows of "${place.field}"`;
    }
    case "rows":
      return key === author && makesMap ? null : `it writes the escrow row of another device (${key})`;
    case "row":
      if (place.device !== author) return `it writes the escrow row of another device (${place.device})`;
      if (COUNTERS.has(key)) return counterProblem(o);
      return key === "given" && makesMap ? null : `it writes "${key}" in its escrow row`;
    case "given":
      if (place.device !== author) return `it writes the escrow row of another device (${place.device})`;
      if (key === author) return "it gives rights to itself";
      return counterProblem(o);
  }
}

/** A counter in an escrow row may only be created at zero or more, or incremented by zero or more. */
function counterProblem(o: Op): string | null {
  const amount = typeof o.value === "number" ? o.value : Number.NaN;
  const ok =
    Number.isSafeInteger(amount) &&
    amount >= 0 &&
    ((o.action === "set" && o.datatype === "counter" && (o.pred ?? []).length === 0) || o.action === "inc");
  return ok ? null : `it ${o.action === "inc" ? "decrements" : "overwrites"} an escrow counter`;
}

/**
 * The object ids of a record's escrow (a map's id is the id of the operation that made it, which is
 * also how `getConflicts` keys the values of a conflicted key), found in the document as of the commit.
 */
function escrowPlaces(view: unknown): Map<string, Place> {
  const places = new Map<string, Place>();
  const idOf = (v: unknown) => (v !== null && typeof v === "object" ? A.getObjectId(v) : null);
  const doc = view as Record<string, unknown>;
  const escrow = doc[ESCROW_KEY];
  const escrowId = idOf(escrow);
  if (!escrowId) return places;
  places.set(escrowId, { kind: "escrow" });
  for (const field of Object.keys(escrow as object)) {
    for (const [id, f] of values(escrow, field)) {
      places.set(id, { kind: "field", field });
      if (!isMap(f)) continue;
      for (const [rowsId, rows] of values(f, "rows")) {
        places.set(rowsId, { kind: "rows", field });
        if (!isMap(rows)) continue;
        for (const device of Object.keys(rows)) {
          for (const [rowId, row] of values(rows, device)) {
            places.set(rowId, { kind: "row", field, device });
            if (!isMap(row)) continue;
            for (const [givenId] of values(row, "given"))
              places.set(givenId, { kind: "given", field, device });
          }
        }
      }
    }
  }
  return places;
}

/**
 * The objects at `key` of a map, by the id that made each: the visible one with its value (to look
 * inside), and any concurrent ones it hides, by id only (their insides never show in any value).
 */
function values(map: unknown, key: string): [string, unknown][] {
  const out: [string, unknown][] = [];
  const v = (map as Record<string, unknown>)[key];
  const id = v !== null && typeof v === "object" ? A.getObjectId(v) : null;
  if (id) out.push([id, v]);
  const conflicts = A.getConflicts(map as A.Doc<unknown>, key) as Record<string, unknown> | undefined;
  for (const other of Object.keys(conflicts ?? {})) if (other !== id) out.push([other, null]);
  return out;
}

function isMap(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v) && !(v instanceof A.Counter);
}
