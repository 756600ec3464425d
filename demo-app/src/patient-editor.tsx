import type { RecordId, RowOf, SpaceId } from "@shoal/client";
import { useState, type FormEvent } from "react";
import { WARDS } from "./clinic-data.ts";
import type { ClinicDatabase, Patient } from "./db.ts";
import { ModalDialog } from "./modal-dialog.tsx";
import { searchTerms } from "./search-terms.ts";
import { errorTags, explainError } from "./explain-error.ts";

type Demographics = Pick<Patient, "name" | "birthDate" | "sex" | "mrn" | "phone" | "ward">;
const FIELDS = ["name", "birthDate", "sex", "mrn", "phone", "ward"] as const;

interface Props {
  db: ClinicDatabase;
  clinicId: SpaceId;
  /** The patient to edit; absent to create one. */
  patient?: RowOf<Patient>;
  onClose(): void;
  onSaved(id: RecordId): void;
}

/** Sets one demographic field on a draft, keeping the key and value types tied together. */
function assign<K extends keyof Demographics>(draft: Demographics, key: K, value: Demographics[K]): void {
  draft[key] = value;
}

function newRecordNumber(): string {
  return `MRN-${String(Math.floor(Math.random() * 900000) + 100000)}`;
}

/**
 * Creates or edits a patient's demographics. An edit writes only the fields that changed, so another
 * device's concurrent edit of a different field survives the merge instead of being overwritten.
 */
export function PatientEditor({ db, clinicId, patient, onClose, onSaved }: Props) {
  const initial: Demographics = patient
    ? {
        name: patient.name,
        birthDate: patient.birthDate,
        sex: patient.sex,
        mrn: patient.mrn,
        phone: patient.phone,
        ward: patient.ward,
      }
    : { name: "", birthDate: "", sex: "female", mrn: newRecordNumber(), phone: "", ward: WARDS[1] };
  const [form, setForm] = useState<Demographics>(initial);
  const [allergies, setAllergies] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [refusal, setRefusal] = useState<ReturnType<typeof errorTags>>({});
  const set = <K extends keyof Demographics>(key: K, value: Demographics[K]) =>
    setForm((f) => ({ ...f, [key]: value }));

  async function submit(event: FormEvent) {
    event.preventDefault();
    const name = form.name.trim();
    if (!name) {
      setError("A patient needs a name.");
      return;
    }
    const values = { ...form, name };
    try {
      if (patient) {
        const changed = FIELDS.filter((k) => values[k] !== initial[k]);
        if (changed.length > 0) {
          await db.patients.update(patient.id, (p) => {
            for (const k of changed) assign(p, k, values[k]);
            if (changed.includes("name") || changed.includes("mrn"))
              p.terms = searchTerms(values.name, values.mrn);
          });
        }
        onSaved(patient.id);
      } else {
        const tags = allergies
          .split(",")
          .map((t) => t.trim().toLocaleLowerCase())
          .filter(Boolean);
        const id = await db.patients.insert(
          {
            ...values,
            clinic: clinicId,
            terms: searchTerms(values.name, values.mrn),
            tags: [...new Set(tags)],
            notes: "",
          },
          { space: clinicId },
        );
        onSaved(id);
      }
    } catch (cause) {
      // A reader's or a removed device's write is refused by the membership log: say so in words.
      setError(`Could not save: ${explainError(cause, "this clinic")}`);
      setRefusal(errorTags(cause));
    }
  }

  return (
    <ModalDialog title={patient ? `Edit ${patient.name}` : "New patient"} onClose={onClose}>
      <form className="patient-editor" onSubmit={submit}>
        <label className="wide">
          Full name
          <input value={form.name} onChange={(e) => set("name", e.target.value)} required autoFocus />
        </label>
        <label>
          Date of birth
          <input type="date" value={form.birthDate} onChange={(e) => set("birthDate", e.target.value)} />
        </label>
        <label>
          Sex
          <select value={form.sex} onChange={(e) => set("sex", e.target.value as Patient["sex"])}>
            <option value="female">Female</option>
            <option value="male">Male</option>
            <option value="other">Other</option>
          </select>
        </label>
        <label>
          Record number
          <input value={form.mrn} onChange={(e) => set("mrn", e.target.value)} />
        </label>
        <label>
          Phone
          <input type="tel" value={form.phone} onChange={(e) => set("phone", e.target.value)} />
        </label>
        <label>
          Ward
          <select value={form.ward} onChange={(e) => set("ward", e.target.value)}>
            {WARDS.map((w) => (
              <option key={w}>{w}</option>
            ))}
          </select>
        </label>
        {!patient && (
          <label className="wide">
            Allergies (comma separated)
            <input
              value={allergies}
              onChange={(e) => setAllergies(e.target.value)}
              placeholder="penicillin, latex"
            />
          </label>
        )}
        {error && (
          <p role="alert" className="error wide" {...refusal}>
            {error}
          </p>
        )}
        <div className="dialog-actions wide">
          <button type="submit">{patient ? "Save changes" : "Create patient"}</button>
          <button type="button" className="secondary" onClick={onClose}>
            Cancel
          </button>
        </div>
      </form>
    </ModalDialog>
  );
}
