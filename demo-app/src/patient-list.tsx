import type { RowOf } from "@shoal/client";
import type { Patient } from "./db.ts";

/** Renders the live rows; `undefined` means the first query has not answered yet. */
export function PatientList({ patients }: { patients: readonly RowOf<Patient>[] | undefined }) {
  if (patients === undefined) return <p className="muted">Loading…</p>;
  if (patients.length === 0) return <p className="muted">No patients yet.</p>;
  return (
    <ul className="patient-list" aria-label="Patients">
      {patients.map((patient) => (
        <li key={patient.id}>
          <span className="name">{patient.name}</span>
          {patient.ward && <span className="ward">Ward {patient.ward}</span>}
        </li>
      ))}
    </ul>
  );
}
