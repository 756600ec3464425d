import { collection, openDatabase, type LockOptions } from "@shoal/client";

/**
 * A patient. `notes` is collaborative text (two people typing keep both edits); every other string is
 * a plain value with one winner per field. `clinic` is the space id, kept in the row so queries can
 * stay inside the clinic shown; `terms` are the lowercase words search matches by prefix.
 */
export interface Patient {
  clinic: string;
  name: string;
  terms: string[];
  birthDate: string;
  sex: "female" | "male" | "other";
  mrn: string;
  phone: string;
  ward: string;
  tags: string[];
  notes: string;
  /**
   * The current dose of the patient's medication, as entered. An inbox field: two devices entering
   * different doses at once show both in the patient's Inbox until someone keeps one.
   */
  dose?: string;
}

/**
 * A vaccine kept at a site (the clinic). `doses` in stock is a bounded counter: it never goes below 0,
 * even when devices administer doses offline, because each device administers only the doses it holds
 * the rights to. `administered` is an ordinary counter, for the most-administered list.
 */
export interface Vaccine {
  clinic: string;
  name: string;
  doses: number;
  administered: number;
}

/** A visit of a patient: the second collection, linked by `patientId`. */
export interface Visit {
  clinic: string;
  patientId: string;
  date: string;
  reason: string;
  clinician: string;
}

/**
 * A device of an open clinic (one without a membership log yet) with the name its user gave it: history
 * lists opaque device ids, and this record lets the audit view say "Reception iPad" instead. Clinics with
 * members take names from the membership log (`db.members`), which a reader could not write to anyway.
 */
export interface DeviceName {
  clinic: string;
  deviceId: string;
  name: string;
}

/**
 * The demo's schema, typed by `collection<T>()`: queries may only name these indexes. Indexes serve the screens: `[clinic+name]` the alphabetical list, `[clinic+ward]`
 * the ward filter, `*tags` the allergy filter, `*terms` search-as-you-type, `[patientId+date]` a
 * patient's visits in date order. With `lock`, the database is encrypted at rest under a PIN (a database
 * of its own: a lock cannot be added to one that holds data).
 */
export function openClinicDatabase(name = "shoal-clinic", lock?: LockOptions) {
  return openDatabase({
    name,
    ...(lock && { lock }),
    collections: {
      patients: collection<Patient>()({
        indexes: "id, clinic, [clinic+name], [clinic+ward], *tags, *terms",
        text: ["notes"],
        conflicts: { dose: "inbox" },
      }),
      visits: collection<Visit>()("id, clinic, [patientId+date]"),
      stock: collection<Vaccine>()({
        indexes: "id, clinic",
        counters: { doses: { min: 0 }, administered: true },
      }),
      // Not `members`: that is `db.members(space)`, the membership log, and the name is reserved.
      deviceNames: collection<DeviceName>()("id, clinic, deviceId"),
    },
  });
}

export type ClinicDatabase = Awaited<ReturnType<typeof openClinicDatabase>>;
