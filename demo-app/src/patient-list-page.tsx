import type { SpaceId } from "@shoal/client";
import { useLiveQuery } from "@shoal/client/react";
import { useDeferredValue, useState } from "react";
import { COMMON_ALLERGIES, WARDS } from "./clinic-data.ts";
import type { ClinicDatabase } from "./db.ts";
import { ageInYears, formatCount } from "./format.ts";
import { PatientEditor } from "./patient-editor.tsx";
import { queryPatients, type PatientFilter } from "./patient-query.ts";
import { SeedPanel } from "./seed-panel.tsx";
import { patientHref } from "./use-route.ts";
import type { Seeder } from "./use-seeder.ts";

/** Rows rendered at once: enough to scroll, few enough to keep typing instant with 2,000 patients. */
const PAGE_SIZE = 100;

/** The patient list: search as you type, ward and allergy filters, new patient, sample data. */
export function PatientListPage({
  db,
  clinicId,
  seeder,
}: {
  db: ClinicDatabase;
  clinicId: SpaceId;
  seeder: Seeder;
}) {
  const [filter, setFilter] = useState<PatientFilter>({ search: "", ward: "", tag: "" });
  const [creating, setCreating] = useState(false);
  // Typing stays responsive while the query for the previous keystroke is still rendering.
  const deferred = useDeferredValue(filter);
  const result = useLiveQuery(
    () => queryPatients(db, clinicId, deferred, PAGE_SIZE),
    [db, clinicId, deferred.search, deferred.ward, deferred.tag],
  );
  const filtered = Boolean(filter.search || filter.ward || filter.tag);

  return (
    <section className="patient-list-page" aria-labelledby="patients-heading">
      <div className="page-title">
        <h1 id="patients-heading">Patients</h1>
        <button type="button" onClick={() => setCreating(true)}>
          New patient
        </button>
      </div>
      <div className="filters" role="search">
        <label className="search">
          <span className="visually-hidden">Search patients</span>
          <input
            type="search"
            placeholder="Search by name or record number"
            value={filter.search}
            onChange={(e) => setFilter({ ...filter, search: e.target.value })}
            aria-label="Search patients"
          />
        </label>
        <label>
          <span className="visually-hidden">Ward</span>
          <select
            aria-label="Ward"
            value={filter.ward}
            onChange={(e) => setFilter({ ...filter, ward: e.target.value })}
          >
            <option value="">All wards</option>
            {WARDS.map((w) => (
              <option key={w}>{w}</option>
            ))}
          </select>
        </label>
        <label>
          <span className="visually-hidden">Allergy</span>
          <select
            aria-label="Allergy"
            value={filter.tag}
            onChange={(e) => setFilter({ ...filter, tag: e.target.value })}
          >
            <option value="">Any allergy</option>
            {COMMON_ALLERGIES.map((t) => (
              <option key={t}>{t}</option>
            ))}
          </select>
        </label>
      </div>
      <SeedPanel db={db} clinicId={clinicId} seeder={seeder} />
      {result === undefined ? (
        <p className="muted">Loading…</p>
      ) : (
        <>
          <p className="muted" data-testid="patient-count">
            {result.total === 0
              ? filtered
                ? "No patients match."
                : "No patients yet."
              : result.total > result.rows.length
                ? `Showing ${formatCount(result.rows.length)} of ${formatCount(result.total)} patients`
                : `${formatCount(result.total)} ${result.total === 1 ? "patient" : "patients"}`}
          </p>
          {result.rows.length > 0 && (
            <ul className="patient-list" aria-label="Patients">
              {result.rows.map((p) => {
                const age = ageInYears(p.birthDate);
                return (
                  <li key={p.id}>
                    <a href={patientHref(p.id)}>
                      <span className="name">{p.name}</span>
                      <span className="meta">
                        {p.mrn}
                        {age !== null && ` · ${age} y`}
                        {p.ward && ` · ${p.ward}`}
                      </span>
                      {p.tags.length > 0 && (
                        <span className="chips" aria-label="Allergies">
                          {p.tags.map((t) => (
                            <span key={t} className="chip">
                              {t}
                            </span>
                          ))}
                        </span>
                      )}
                    </a>
                  </li>
                );
              })}
            </ul>
          )}
        </>
      )}
      {creating && (
        <PatientEditor
          db={db}
          clinicId={clinicId}
          onClose={() => setCreating(false)}
          onSaved={(id) => {
            setCreating(false);
            location.hash = patientHref(id);
          }}
        />
      )}
    </section>
  );
}
