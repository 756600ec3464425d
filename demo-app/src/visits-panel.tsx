import type { RecordId, SpaceId } from "@shoal/client";
import { useLiveQuery } from "@shoal/client/react";
import { useId, useState, type FormEvent } from "react";
import { VISIT_REASONS } from "./clinic-data.ts";
import type { ClinicDatabase } from "./db.ts";
import { safeVisit } from "./safe-values.ts";

function today(): string {
  const d = new Date();
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}-${String(d.getDate()).padStart(2, "0")}`;
}

interface Props {
  db: ClinicDatabase;
  clinicId: SpaceId;
  patientId: RecordId;
  deviceName: string;
}

/** A patient's visits (the second collection), newest first, and a form to record one. */
export function VisitsPanel({ db, clinicId, patientId, deviceName }: Props) {
  const visits = useLiveQuery(
    () =>
      db.visits
        .where("[patientId+date]")
        .between([patientId, ""], [patientId, "\uffff"])
        .reverse()
        .toArray()
        .then((rows) => rows.map(safeVisit)),
    [db, patientId],
  );
  const [date, setDate] = useState(today);
  const [reason, setReason] = useState("");
  const [clinician, setClinician] = useState(deviceName);
  const listId = useId();

  async function add(event: FormEvent) {
    event.preventDefault();
    if (!reason.trim()) return;
    await db.visits.insert(
      { clinic: clinicId, patientId, date, reason: reason.trim(), clinician: clinician.trim() },
      { space: clinicId },
    );
    setReason("");
  }

  return (
    <div className="visits">
      {visits === undefined ? (
        <p className="muted">Loading…</p>
      ) : visits.length === 0 ? (
        <p className="muted">No visits recorded.</p>
      ) : (
        <table className="visits-table">
          <thead>
            <tr>
              <th scope="col">Date</th>
              <th scope="col">Reason</th>
              <th scope="col">Clinician</th>
            </tr>
          </thead>
          <tbody>
            {visits.map((v) => (
              <tr key={v.id}>
                <td>{v.date}</td>
                <td>{v.reason}</td>
                <td>{v.clinician}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <form className="inline-form" onSubmit={(e) => void add(e)} aria-label="Record a visit">
        <label>
          Date
          <input type="date" value={date} onChange={(e) => setDate(e.target.value)} required />
        </label>
        <label>
          Reason
          <input list={listId} value={reason} onChange={(e) => setReason(e.target.value)} required />
        </label>
        <datalist id={listId}>
          {VISIT_REASONS.map((r) => (
            <option key={r} value={r} />
          ))}
        </datalist>
        <label>
          Clinician
          <input value={clinician} onChange={(e) => setClinician(e.target.value)} />
        </label>
        <button type="submit">Record visit</button>
      </form>
    </div>
  );
}
