import type { SpaceId } from "@shoal/client";
import { useCallback, useState } from "react";
import type { ClinicDatabase } from "./db.ts";
import {
  PATIENTS_PER_BATCH,
  SAMPLE_PATIENTS,
  VISITS_PER_PATIENT,
  sampleClinic,
  type SamplePatient,
} from "./sample-clinic.ts";

/** Progress of loading the sample clinic, in records (patients and visits). */
export interface SeedState {
  running: boolean;
  done: number;
  total: number;
  patients: number;
  visits: number;
  finished: boolean;
  error: string | null;
}

export interface Seeder {
  state: SeedState;
  /** Loads the sample clinic's first `patients` patients (all of it by default) with their visits. */
  start(clinic: SpaceId, patients?: number): void;
}

const IDLE: SeedState = {
  running: false,
  done: 0,
  total: SAMPLE_PATIENTS * (1 + VISITS_PER_PATIENT),
  patients: 0,
  visits: 0,
  finished: false,
  error: null,
};

/** Gives the event loop a turn: typing, clicks and live-query renders run between two batches. */
function yieldToPage(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

/**
 * Loads the sample clinic in commits of about 100 records, one after the other, yielding to the page
 * between them so the list stays usable and the progress bar moves. Lives at the app's top so that
 * moving between pages does not stop it.
 */
export function useSeeder(db: ClinicDatabase): Seeder {
  const [state, setState] = useState<SeedState>(IDLE);

  const start = useCallback(
    (clinic: SpaceId, size = SAMPLE_PATIENTS) => {
      setState({ ...IDLE, running: true, total: size * (1 + VISITS_PER_PATIENT) });
      void (async () => {
        let patients = 0;
        let visits = 0;
        let batch: SamplePatient[] = [];
        const flush = async () => {
          const items = batch;
          batch = [];
          await db.transact(async (tx) => {
            for (const { patient, visits: vs } of items) {
              const patientId = await tx.patients.insert(patient, { space: clinic });
              for (const v of vs) await tx.visits.insert({ ...v, patientId }, { space: clinic });
            }
          });
          patients += items.length;
          visits += items.reduce((n, item) => n + item.visits.length, 0);
          setState((s) => ({ ...s, done: patients + visits, patients, visits }));
          await yieldToPage();
        };
        try {
          for (const item of sampleClinic(clinic, size)) {
            batch.push(item);
            if (batch.length === PATIENTS_PER_BATCH) await flush();
          }
          if (batch.length > 0) await flush();
          setState((s) => ({ ...s, running: false, finished: true }));
        } catch (cause) {
          // A full disk is the realistic failure here (QuotaExceeded): say what was loaded before it.
          setState((s) => ({
            ...s,
            running: false,
            error: cause instanceof Error ? cause.message : String(cause),
          }));
        }
      })();
    },
    [db],
  );

  return { state, start };
}
