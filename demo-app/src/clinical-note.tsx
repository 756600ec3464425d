import type { RecordId } from "@shoal/client";
import { useTextField } from "@shoal/client/react";
import type { ClinicDatabase } from "./db.ts";
import { asText } from "./safe-values.ts";

/** Quiet time after the last keystroke before the note is saved (and synced). */
const SAVE_DELAY_MS = 400;

/**
 * The free-text clinical note, collaborative: two people typing at once keep both texts, and text
 * arriving from another device or tab appears while one types, the caret staying where it was.
 * `useTextField` does the work; a note that another device replaced with something other than text
 * is shown (as text) but not editable, so nothing overwrites it.
 */
export function ClinicalNote({ db, id }: { db: ClinicalDatabaseLike; id: RecordId }) {
  const note = useTextField(db.patients, id, "notes", { saveDelay: SAVE_DELAY_MS, display: asText });
  return (
    <div className="clinical-note">
      <textarea
        {...note.props}
        aria-label="Clinical note"
        rows={8}
        placeholder="Observations, plan, follow-up… Colleagues can write here at the same time."
      />
      <p className="hint" aria-live="polite" data-testid="note-state">
        {note.status === "saved"
          ? "Saved on this device"
          : note.status === "saving"
            ? "Saving…"
            : note.status === "editing"
              ? "Editing…"
              : note.status === "loading"
                ? "Loading…"
                : note.status === "failed"
                  ? `Not saved: ${note.error?.message ?? "unknown error"}`
                  : `Read only: ${note.error?.message ?? "this note cannot be edited here"}`}
      </p>
    </div>
  );
}

/** The part of the database the note needs. */
type ClinicalDatabaseLike = Pick<ClinicDatabase, "patients">;
