import type { RecordId, SpaceId } from "@shoal/client";
import { useLiveQuery } from "@shoal/client/react";
import { useState } from "react";
import { AllergyTags } from "./allergy-tags.tsx";
import { AuditPanel } from "./audit-panel.tsx";
import { ClinicalNote } from "./clinical-note.tsx";
import type { ClinicDatabase } from "./db.ts";
import { DoseCard } from "./dose-card.tsx";
import { DurabilityBadge } from "./durability-badge.tsx";
import { ErrorBoundary } from "./error-boundary.tsx";
import { ageInYears } from "./format.ts";
import { PatientEditor } from "./patient-editor.tsx";
import { safePatient } from "./safe-values.ts";
import { VisitsPanel } from "./visits-panel.tsx";
import { ErasePatientButton, ErasureReceipts, useErasure } from "./erase-panel.tsx";
import { useMembers } from "./use-members.ts";

interface Props {
  db: ClinicDatabase;
  clinicId: SpaceId;
  deviceName: string;
  id: string;
}

/** One patient: demographics, allergies, the collaborative note, visits and the audit trail. */
export function PatientPage({ db, clinicId, deviceName, id }: Props) {
  // `null` once the query answered that there is no such row (deleted here or elsewhere).
  const patient = useLiveQuery(async () => {
    const row = await db.patients.get(id);
    return row ? safePatient(row) : null;
  }, [db, id]);
  const [editing, setEditing] = useState(false);
  const [confirmDelete, setConfirmDelete] = useState(false);
  const [deleteError, setDeleteError] = useState<string | null>(null);
  const erasure = useErasure(db, id);
  const members = useMembers(db, clinicId);

  if (patient === undefined) return <p className="muted">Loading…</p>;
  if (patient === null && erasure && erasure.of > 0) {
    return (
      <section className="card" aria-labelledby="erased-heading">
        <h1 id="erased-heading">Patient erased (GDPR)</h1>
        <p>
          This record, its history and its visits were erased for good. Each device confirms with a signed
          receipt.
        </p>
        <ErasureReceipts status={erasure} />
        <a href="#/">Back to all patients</a>
      </section>
    );
  }
  if (patient === null) {
    return (
      <section className="card">
        <h1>Patient not found</h1>
        <p>This record was deleted, or it has not reached this device yet.</p>
        <a href="#/">Back to all patients</a>
      </section>
    );
  }
  const recordId = patient.id as RecordId;
  const age = ageInYears(patient.birthDate);

  return (
    <article className="patient-page" aria-labelledby="patient-name">
      <a className="back" href="#/">
        ← All patients
      </a>
      <header className="patient-header">
        <div>
          <h1 id="patient-name">{patient.name}</h1>
          <p className="muted">
            {patient.mrn}
            {age !== null && ` · ${age} years`} · {patient.ward}
          </p>
        </div>
        <DurabilityBadge db={db} id={recordId} />
        <div className="header-actions">
          <button type="button" onClick={() => setEditing(true)}>
            Edit
          </button>
          <button type="button" className="danger" onClick={() => setConfirmDelete(true)}>
            Delete
          </button>
          {members?.role === "admin" && <ErasePatientButton db={db} id={recordId} name={patient.name} />}
        </div>
      </header>
      {confirmDelete && (
        <div className="confirm card" role="alertdialog" aria-labelledby="confirm-delete">
          <p id="confirm-delete">
            Delete {patient.name} on every device? Their history stays in the audit log.
          </p>
          <div className="dialog-actions">
            <button
              type="button"
              className="danger"
              onClick={() => {
                db.patients.delete(recordId).then(
                  () => void (location.hash = "#/"),
                  (cause: unknown) => setDeleteError(cause instanceof Error ? cause.message : String(cause)),
                );
              }}
            >
              Delete patient
            </button>
            <button type="button" className="secondary" onClick={() => setConfirmDelete(false)} autoFocus>
              Cancel
            </button>
          </div>
          {deleteError && (
            <p role="alert" className="error">
              Could not delete: {deleteError}
            </p>
          )}
        </div>
      )}
      <div className="patient-grid">
        <section className="card" aria-labelledby="demographics-heading">
          <h2 id="demographics-heading">Demographics</h2>
          <dl className="facts">
            <dt>Date of birth</dt>
            <dd data-testid="birth-date">{patient.birthDate || "—"}</dd>
            <dt>Sex</dt>
            <dd>{patient.sex}</dd>
            <dt>Phone</dt>
            <dd data-testid="phone">{patient.phone || "—"}</dd>
            <dt>Ward</dt>
            <dd data-testid="ward">{patient.ward}</dd>
            <dt>Record number</dt>
            <dd>{patient.mrn}</dd>
          </dl>
        </section>
        <section className="card" aria-labelledby="allergies-heading">
          <h2 id="allergies-heading">Allergies</h2>
          <ErrorBoundary what="the allergies">
            <AllergyTags db={db} id={recordId} tags={patient.tags} />
          </ErrorBoundary>
        </section>
        <section className="card" aria-labelledby="dose-heading">
          <h2 id="dose-heading">Current dose</h2>
          <ErrorBoundary what="the dose">
            <DoseCard db={db} clinicId={clinicId} id={recordId} dose={patient.dose ?? ""} />
          </ErrorBoundary>
        </section>
        <section className="card wide" aria-labelledby="note-heading">
          <h2 id="note-heading">Clinical note</h2>
          <ErrorBoundary what="the clinical note">
            <ClinicalNote key={recordId} db={db} id={recordId} />
          </ErrorBoundary>
        </section>
        <section className="card wide" aria-labelledby="visits-heading">
          <h2 id="visits-heading">Visits</h2>
          <ErrorBoundary what="the visits">
            <VisitsPanel db={db} clinicId={clinicId} patientId={recordId} deviceName={deviceName} />
          </ErrorBoundary>
        </section>
        <section className="card wide" aria-labelledby="audit-heading">
          <h2 id="audit-heading">Audit trail</h2>
          <ErrorBoundary what="the audit trail">
            <AuditPanel db={db} clinicId={clinicId} id={recordId} />
          </ErrorBoundary>
        </section>
      </div>
      {editing && (
        <PatientEditor
          db={db}
          clinicId={clinicId}
          patient={patient}
          onClose={() => setEditing(false)}
          onSaved={() => setEditing(false)}
        />
      )}
    </article>
  );
}
