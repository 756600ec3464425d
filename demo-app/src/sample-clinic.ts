import { COMMON_ALLERGIES, VISIT_REASONS, WARDS } from "./clinic-data.ts";
import type { Patient, Visit } from "./db.ts";
import { searchTerms } from "./search-terms.ts";
import { SeededRandom } from "./seeded-random.ts";

// Blocks of names read better than one per line.
// prettier-ignore
const FIRST_NAMES = [
  "Ada", "Alan", "Amara", "Ana", "Ben", "Bruno", "Chen", "Chloe", "Dara", "David", "Elena", "Emil", "Fatima",
  "Felix", "Grace", "Hana", "Hugo", "Ines", "Ivan", "Jamal", "Julia", "Kai", "Lena", "Liam", "Maya", "Mateo",
  "Nadia", "Noah", "Olga", "Omar", "Priya", "Paul", "Rosa", "Sami", "Sofia", "Tariq", "Uma", "Victor", "Wen",
  "Yara", "Zoe",
];
// prettier-ignore
const LAST_NAMES = [
  "Abebe", "Almeida", "Berg", "Brown", "Chowdhury", "Costa", "Dubois", "Eriksen", "Fischer", "Garcia", "Haddad",
  "Ito", "Jansen", "Kowalski", "Kim", "Lopez", "Lovelace", "Martin", "Meyer", "Nakamura", "Novak", "Okafor",
  "Olsen", "Patel", "Petrov", "Quinn", "Rossi", "Santos", "Schmidt", "Silva", "Smith", "Tanaka", "Turing",
  "Usman", "Virtanen", "Wang", "Weber", "Yilmaz", "Zhang",
];
const CLINICIANS = ["Dr. Osei", "Dr. Lindqvist", "Dr. Mbeki", "Nurse Ramos", "Nurse Keller", "Dr. Hoffmann"];
const NOTES = [
  "Stable. Continue current medication and review in three months.",
  "Reports mild dizziness in the mornings; blood pressure to be monitored at home.",
  "Type 2 diabetes, well controlled on metformin. Annual eye exam due.",
  "Recovering well after surgery; wound clean and dry.",
  "Asthma: uses reliever twice a week. Inhaler technique reviewed.",
];

/** Sizes of the sample clinic: 2,000 patients with 5 visits each. */
export const SAMPLE_PATIENTS = 2000;
/**
 * The small sample: the first 500 patients of the same clinic (same seed, same commits), for a quick
 * look or a slow device, where the full one takes half a minute or more.
 */
export const SMALL_SAMPLE_PATIENTS = 500;
export const VISITS_PER_PATIENT = 5;
/** Patients per transaction: 16 patients and their 80 visits make commits of about 100 records. */
export const PATIENTS_PER_BATCH = 16;

/** One patient and their visits, as the seeder inserts them together. */
export interface SamplePatient {
  patient: Patient;
  visits: Omit<Visit, "patientId">[];
}

function isoDate(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

/**
 * The sample clinic, generated lazily from a fixed seed: realistic names, birth dates, wards, allergies
 * and visit histories, identical on every run. A smaller `patients` count gives the first patients of
 * the same clinic.
 */
export function* sampleClinic(
  clinic: string,
  patients = SAMPLE_PATIENTS,
  seed = 20261125,
): Generator<SamplePatient> {
  const random = new SeededRandom(seed);
  const today = Date.UTC(2026, 10, 25);
  const day = 86_400_000;
  for (let i = 0; i < patients; i++) {
    const name = `${random.pick(FIRST_NAMES)} ${random.pick(LAST_NAMES)}`;
    const mrn = `MRN-${String(100000 + i)}`;
    const allergyCount = random.next() < 0.6 ? 0 : random.int(1, 3);
    const patient: Patient = {
      clinic,
      name,
      terms: searchTerms(name, mrn),
      birthDate: isoDate(today - random.int(365, 95 * 365) * day),
      sex: random.pick(["female", "male", "female", "male", "other"] as const),
      mrn,
      phone: `+44 20 7${random.int(100, 999)} ${random.int(1000, 9999)}`,
      ward: random.pick(WARDS),
      tags: random.sample(COMMON_ALLERGIES, allergyCount),
      // Most notes start empty: text costs one Automerge op per character (TOOLCHAIN.md).
      notes: random.next() < 0.2 ? random.pick(NOTES) : "",
    };
    const visits = Array.from({ length: VISITS_PER_PATIENT }, () => ({
      clinic,
      date: isoDate(today - random.int(0, 730) * day),
      reason: random.pick(VISIT_REASONS),
      clinician: random.pick(CLINICIANS),
    }));
    yield { patient, visits };
  }
}
