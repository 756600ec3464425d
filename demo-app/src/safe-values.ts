import type { RecordId, RowOf } from "@shoal/client";
import type { DeviceName, Patient, Visit } from "./db.ts";

/**
 * Rows as the screens may trust them. Any field of a record may hold any JSON value, because another
 * device (an older or newer app, a bug, or a hostile member of the clinic) wrote it: the screens read
 * rows only through these, so a list where a string was expected, or an object where text was, shows
 * as text instead of crashing the page.
 */

/** Longest text shown for a value that is not text (an object or a list someone put in a text field). */
const MAX_SHOWN = 200;

/**
 * A value as text: strings as they are, numbers and booleans written out, nothing for null or absent,
 * anything else as its JSON (shortened).
 *
 * @example
 * asText(42); // "42"
 * asText({ a: 1 }); // '{"a":1}'
 */
export function asText(value: unknown): string {
  if (typeof value === "string") return value;
  if (value === null || value === undefined) return "";
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  let json: string | undefined;
  try {
    json = JSON.stringify(value);
  } catch {
    json = undefined;
  }
  const shown = json ?? Object.prototype.toString.call(value);
  return shown.length > MAX_SHOWN ? `${shown.slice(0, MAX_SHOWN)}…` : shown;
}

/**
 * A value as a list of distinct non-empty texts: a list item by item, a single string as one item,
 * anything else as no items.
 *
 * @example
 * asTextList("latex"); // ["latex"]
 * asTextList(["a", 1, null]); // ["a", "1"]
 */
export function asTextList(value: unknown): string[] {
  const items = Array.isArray(value) ? value.map(asText) : typeof value === "string" ? [value] : [];
  return [...new Set(items.filter((t) => t !== ""))];
}

function asSex(value: unknown): Patient["sex"] {
  return value === "female" || value === "male" || value === "other" ? value : "other";
}

/** A patient row with every field of the type the screens expect. */
export function safePatient(row: RowOf<Patient>): RowOf<Patient> {
  const r = row as unknown as Record<string, unknown>;
  return {
    id: asText(r.id) as RecordId,
    clinic: asText(r.clinic),
    name: asText(r.name),
    terms: asTextList(r.terms),
    birthDate: asText(r.birthDate),
    sex: asSex(r.sex),
    mrn: asText(r.mrn),
    phone: asText(r.phone),
    ward: asText(r.ward),
    tags: asTextList(r.tags),
    notes: asText(r.notes),
    dose: asText(r.dose),
  };
}

/** A visit row with every field as text. */
export function safeVisit(row: RowOf<Visit>): RowOf<Visit> {
  const r = row as unknown as Record<string, unknown>;
  return {
    id: asText(r.id) as RecordId,
    clinic: asText(r.clinic),
    patientId: asText(r.patientId),
    date: asText(r.date),
    reason: asText(r.reason),
    clinician: asText(r.clinician),
  };
}

/** A device name row with every field as text. */
export function safeDeviceName(row: RowOf<DeviceName>): RowOf<DeviceName> {
  const r = row as unknown as Record<string, unknown>;
  return {
    id: asText(r.id) as RecordId,
    clinic: asText(r.clinic),
    deviceId: asText(r.deviceId),
    name: asText(r.name),
  };
}
