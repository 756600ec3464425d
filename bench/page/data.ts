// The clinic records every system of the bench stores: the same rows for Shoal, the peer and Dexie,
// generated from a seed so that every run and every system sees identical data.

/** One patient record: 10 fields, `notes` a 200-character note (declared as collaborative text). */
export interface PatientRecord {
  name: string;
  ward: string;
  clinicId: string;
  birthDate: string;
  phone: string;
  status: string;
  allergies: string;
  tags: string[];
  visits: number;
  notes: string;
}

/** The indexes every system declares (Dexie syntax; Shoal adds nothing else). */
export const PATIENT_INDEXES = "id, name, ward, clinicId, *tags";
/** Wards are `W0`..`W9`, one row in ten each: `ward = QUERY_WARD` matches 10% of the rows. */
export const QUERY_WARD = "W3";
export const NOTE_LENGTH = 200;

const FIRST = [
  "Ada",
  "Bram",
  "Chidi",
  "Dana",
  "Elif",
  "Farid",
  "Greta",
  "Hana",
  "Ivo",
  "Jun",
  "Kofi",
  "Lena",
];
const LAST = [
  "Okafor",
  "Smith",
  "Nakamura",
  "Novak",
  "Haddad",
  "Silva",
  "Moreau",
  "Kowalski",
  "Ibsen",
  "Reyes",
];
const STATUS = ["active", "discharged", "referred", "waiting"];
const TAGS = ["diabetic", "follow-up", "routine", "cardiac", "allergy", "pediatric", "asthma"];
const WORDS = (
  "reviewed at the morning round stable continue current plan blood pressure within range patient reports " +
  "mild pain advised rest and fluids follow up in two weeks medication adjusted labs ordered no acute distress"
).split(" ");

/** A small seeded PRNG (mulberry32): the same seed always gives the same sequence. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Record number `i` of the data set `seed`: a pure function of both. */
export function patient(seed: number, i: number): PatientRecord {
  const r = prng(seed * 1_000_003 + i);
  const pick = <T>(list: readonly T[]): T => list[Math.floor(r() * list.length)]!;
  let notes = "";
  while (notes.length < NOTE_LENGTH) notes += (notes ? " " : "") + pick(WORDS);
  const tags = [pick(TAGS)];
  if (r() < 0.4) tags.push(pick(TAGS));
  return {
    name: `${pick(FIRST)} ${pick(LAST)}`,
    ward: `W${i % 10}`,
    clinicId: `clinic-${i % 4}`,
    birthDate: `${1930 + Math.floor(r() * 90)}-${String(1 + Math.floor(r() * 12)).padStart(2, "0")}-${String(1 + Math.floor(r() * 28)).padStart(2, "0")}`,
    phone: `+44 20 7946 ${String(Math.floor(r() * 10_000)).padStart(4, "0")}`,
    status: pick(STATUS),
    allergies: r() < 0.2 ? "penicillin" : "",
    tags: [...new Set(tags)],
    visits: Math.floor(r() * 40),
    notes: notes.slice(0, NOTE_LENGTH),
  };
}

/** Records `from`..`to - 1` of the data set. */
export function patients(seed: number, from: number, to: number): PatientRecord[] {
  const out: PatientRecord[] = [];
  for (let i = from; i < to; i++) out.push(patient(seed, i));
  return out;
}

/** The p-th percentile (0..100) of samples, nearest rank. */
export function percentile(samples: readonly number[], p: number): number {
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank] ?? NaN;
}

/** Resolves after the browser has had a chance to run other tasks (timers, IndexedDB callbacks). */
export const tick = (ms = 0): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
