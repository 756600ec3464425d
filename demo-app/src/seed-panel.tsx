import type { SpaceId } from "@shoal/client";
import type { ClinicDatabase } from "./db.ts";
import { formatCount } from "./format.ts";
import { SAMPLE_PATIENTS, SMALL_SAMPLE_PATIENTS, VISITS_PER_PATIENT } from "./sample-clinic.ts";
import type { Seeder } from "./use-seeder.ts";
import { useLiveQuery } from "@shoal/client/react";

/**
 * The sample-data loader: a button while the clinic is empty or small, a progress bar while loading,
 * and the counts when done. The list under it keeps updating as batches land.
 */
export function SeedPanel({
  db,
  clinicId,
  seeder,
}: {
  db: ClinicDatabase;
  clinicId: SpaceId;
  seeder: Seeder;
}) {
  const { state } = seeder;
  const visits = useLiveQuery(() => db.visits.where("clinic").equals(clinicId).count(), [db, clinicId]);

  if (state.running) {
    return (
      <div className="seed-panel" aria-live="polite">
        <label>
          Loading sample clinic: {formatCount(state.done)} of {formatCount(state.total)} records
          <progress aria-label="Sample clinic progress" max={state.total} value={state.done} />
        </label>
      </div>
    );
  }
  return (
    <div className="seed-panel">
      {state.finished && (
        <p data-testid="seed-result">
          Loaded {formatCount(state.patients)} patients and {formatCount(state.visits)} visits.
        </p>
      )}
      {state.error && (
        <p role="alert" className="error">
          Loading stopped after {formatCount(state.done)} records: {state.error}
        </p>
      )}
      <p className="muted">
        <span data-testid="visit-count">{visits === undefined ? "…" : formatCount(visits)}</span> visits in
        this clinic.{" "}
        <button type="button" className="link-button" onClick={() => seeder.start(clinicId)}>
          Load sample clinic ({sizeLabel(SAMPLE_PATIENTS)})
        </button>{" "}
        or{" "}
        <button
          type="button"
          className="link-button"
          onClick={() => seeder.start(clinicId, SMALL_SAMPLE_PATIENTS)}
        >
          a small one ({sizeLabel(SMALL_SAMPLE_PATIENTS)})
        </button>
      </p>
    </div>
  );
}

/** "2,000 patients, 10,000 visits" for a sample of `patients` patients. */
function sizeLabel(patients: number): string {
  return `${formatCount(patients)} patients, ${formatCount(patients * VISITS_PER_PATIENT)} visits`;
}
