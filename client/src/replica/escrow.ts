import * as A from "@automerge/automerge";
import { ValidationError } from "../errors.ts";
import type { CollectionSpec } from "./collection-spec.ts";

/**
 * The reserved root key of a record's document under which its bounded counters keep their escrow:
 * `$escrow[field] = { min, rows: { [device]: { inc, dec, want, waived, given: { [device]: n } } } }`, every
 * number an Automerge counter. Each device writes only its own row, and only by increments (receivers
 * enforce both: escrow-check.ts), so every row merges by sum and no write is ever lost to a conflict.
 */
export const ESCROW_KEY = "$escrow";

/** The materialized row field that summarizes a record's escrow (see `EscrowSummary`). */
export const ESCROW_FIELD = "$escrow";

/** One device's row of one bounded counter, read as numbers. */
export interface EscrowRow {
  /** What this device added (the creator's initial value above `min` counts here). */
  readonly inc: number;
  /** What this device took. */
  readonly dec: number;
  /** Rights this device asked for, in all (see `unmetWant`). */
  readonly want: number;
  /** Requests this device withdrew, in all: it took or added since, so it no longer waits for them. */
  readonly waived: number;
  /** Rights this device gave, per receiving device. */
  readonly given: ReadonlyMap<string, number>;
}

/** One bounded counter of a record, read as numbers. */
export interface EscrowState {
  readonly min: number;
  readonly rows: ReadonlyMap<string, EscrowRow>;
}

/** A bounded counter as its row shows it: its bound, and per device its rights and unmet request. */
export interface EscrowFieldSummary {
  readonly min: number;
  /** Rights per device id (what each may take without asking). */
  readonly rights: Readonly<Record<string, number>>;
  /** Unmet requests per device id (only devices asking for more). */
  readonly wants: Readonly<Record<string, number>>;
}

/** The `$escrow` field of a row: per bounded counter field, its summary. */
export type EscrowSummary = Readonly<Record<string, EscrowFieldSummary>>;

/** A counter's or number's value; anything else (hostile shapes a receiver refuses anyway) reads 0. */
function num(v: unknown): number {
  if (v instanceof A.Counter) return v.value;
  return typeof v === "number" && Number.isFinite(v) ? v : 0;
}

function isMap(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v) && !(v instanceof A.Counter);
}

/**
 * Reads one bounded counter's escrow from a document (or a view of one), or undefined when the record
 * has none for `field` (created before the field was declared bounded).
 *
 * @example
 * const st = readEscrow(doc, "doses");
 * if (st) console.log(escrowValue(st), rightsOf(st, db.deviceId));
 */
export function readEscrow(doc: unknown, field: string): EscrowState | undefined {
  const all = isMap(doc) ? doc[ESCROW_KEY] : undefined;
  const f = isMap(all) ? all[field] : undefined;
  if (!isMap(f)) return undefined;
  const rows = new Map<string, EscrowRow>();
  if (isMap(f.rows)) {
    for (const [dev, r] of Object.entries(f.rows)) {
      if (!isMap(r)) continue;
      const given = new Map<string, number>();
      if (isMap(r.given)) for (const [to, n] of Object.entries(r.given)) given.set(to, num(n));
      rows.set(dev, { inc: num(r.inc), dec: num(r.dec), want: num(r.want), waived: num(r.waived), given });
    }
  }
  return { min: num(f.min), rows };
}

/** The counter's value: its bound plus everything added minus everything taken. */
export function escrowValue(st: EscrowState): number {
  let v = st.min;
  for (const r of st.rows.values()) v += r.inc - r.dec;
  return v;
}

/** What all devices together may take: the value minus the bound (the sum of every device's rights). */
export function totalRights(st: EscrowState): number {
  return escrowValue(st) - st.min;
}

/** Rights received by `device` from every other device. */
function received(st: EscrowState, device: string): number {
  let n = 0;
  for (const [from, r] of st.rows) if (from !== device) n += r.given.get(device) ?? 0;
  return n;
}

/**
 * What `device` may take: what it added, plus what others gave it, minus what it gave and took. Only
 * the device's own row counts against it, so rights received later only ever add.
 */
export function rightsOf(st: EscrowState, device: string): number {
  const r = st.rows.get(device);
  let out = 0;
  if (r) {
    out += r.inc - r.dec;
    for (const [to, n] of r.given) if (to !== device) out -= n;
  }
  return out + received(st, device);
}

/** What `device` asked for and has neither been given nor withdrawn (0 when it asks for nothing). */
export function unmetWant(st: EscrowState, device: string): number {
  const r = st.rows.get(device);
  return r ? Math.max(0, r.want - r.waived - received(st, device)) : 0;
}

/** The summary of every bounded counter in a document, for its row; undefined if it has none. */
export function escrowSummary(
  doc: unknown,
): { values: Record<string, number>; summary: EscrowSummary } | undefined {
  const all = isMap(doc) ? doc[ESCROW_KEY] : undefined;
  if (!isMap(all)) return undefined;
  const values: Record<string, number> = {};
  const summary: Record<string, EscrowFieldSummary> = {};
  for (const field of Object.keys(all)) {
    const st = readEscrow(doc, field);
    if (!st) continue;
    const rights: Record<string, number> = {};
    const wants: Record<string, number> = {};
    for (const dev of st.rows.keys()) {
      rights[dev] = rightsOf(st, dev);
      const w = unmetWant(st, dev);
      if (w > 0) wants[dev] = w;
    }
    values[field] = escrowValue(st);
    summary[field] = { min: st.min, rights, wants };
  }
  return { values, summary };
}

/** A device's empty row: counters from zero (created with `pred` empty, so no write is overwritten). */
export function emptyRow(): Record<string, unknown> {
  return {
    inc: new A.Counter(0),
    dec: new A.Counter(0),
    want: new A.Counter(0),
    waived: new A.Counter(0),
    given: {},
  };
}

/**
 * Takes a new record's bounded counters out of its value and returns them as the `$escrow` object its
 * document starts with: the creator holds the rights to all of the initial value above `min` (a field
 * left out starts at `min`). Throws `ValidationError` for a value that is not a whole number, or below
 * the bound.
 */
export function initialEscrow(
  spec: CollectionSpec,
  value: Record<string, unknown>,
  device: string,
): { rest: Record<string, unknown>; escrow: Record<string, unknown> } {
  const rest = { ...value };
  const escrow: Record<string, unknown> = {};
  for (const [field, { min }] of spec.bounded ?? []) {
    const v = rest[field] ?? min;
    delete rest[field];
    if (!Number.isSafeInteger(v) || (v as number) < min) {
      throw new ValidationError(
        `Bounded counter "${field}" must start at a whole number of at least ${min} (got ${String(v)}).`,
      );
    }
    const row = emptyRow();
    row.inc = new A.Counter((v as number) - min);
    escrow[field] = { min, rows: { [device]: row } };
  }
  return { rest, escrow };
}
