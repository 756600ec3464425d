import type { RowOf } from "@shoal/client";
import type { ClinicDatabase, Patient } from "./db.ts";
import { safePatient } from "./safe-values.ts";

/** What the list is narrowed by. Empty strings mean "any". */
export interface PatientFilter {
  search: string;
  ward: string;
  tag: string;
}

export interface PatientPage {
  rows: RowOf<Patient>[];
  /** How many patients match, of which `rows` holds the first `limit` by name. */
  total: number;
}

const byName = (a: RowOf<Patient>, b: RowOf<Patient>) =>
  a.name.localeCompare(b.name) || a.id.localeCompare(b.id);

/**
 * Runs the list's query on the most selective index for the filter and narrows the rest in memory:
 * search words by prefix on `*terms`, an allergy on `*tags`, a ward on `[clinic+ward]`, and otherwise
 * the clinic's patients in name order on `[clinic+name]`, of which only `limit` rows are read.
 * Called inside a live query, so it re-runs when a commit touches what it read. Rows come back through
 * `safePatient`: another device may have written any JSON in any field.
 */
export async function queryPatients(
  db: ClinicDatabase,
  clinic: string,
  filter: PatientFilter,
  limit: number,
): Promise<PatientPage> {
  const words = filter.search.toLocaleLowerCase().split(/\s+/).filter(Boolean);
  const matches = (p: RowOf<Patient>) =>
    p.clinic === clinic &&
    (!filter.ward || p.ward === filter.ward) &&
    (!filter.tag || p.tags.includes(filter.tag)) &&
    words.every((w) => p.terms.some((t) => t.startsWith(w)));

  let candidates: RowOf<Patient>[];
  if (words.length > 0) {
    // The longest word narrows the index range the most; the others are checked in `matches`.
    const longest = words.reduce((a, b) => (b.length > a.length ? b : a));
    candidates = await db.patients.where("terms").startsWith(longest).distinct().toArray();
  } else if (filter.tag) {
    candidates = await db.patients.where("tags").equals(filter.tag).toArray();
  } else if (filter.ward) {
    candidates = await db.patients.where("[clinic+ward]").equals([clinic, filter.ward]).toArray();
  } else {
    const [rows, total] = await Promise.all([
      db.patients.where("[clinic+name]").between([clinic, ""], [clinic, "\uffff"]).limit(limit).toArray(),
      db.patients.where("clinic").equals(clinic).count(),
    ]);
    return { rows: rows.map(safePatient), total };
  }
  const all = candidates.map(safePatient).filter(matches).sort(byName);
  return { rows: all.slice(0, limit), total: all.length };
}
