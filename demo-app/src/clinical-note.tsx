import type { RecordId } from "@shoal/client";
import { useCallback, useEffect, useLayoutEffect, useRef, useState } from "react";
import type { ClinicDatabase } from "./db.ts";
import { mapCaret, rebaseText } from "./text-splice.ts";

/** Quiet time after the last keystroke before the note is saved (and synced). */
const SAVE_DELAY_MS = 400;

/**
 * The free-text clinical note, collaborative: two people typing at once keep both texts.
 *
 * The textarea edits a local draft. Saving (after a pause in typing, and on blur) replays the draft's
 * change on the note as it is in the document at that moment (`rebaseText`), and assigning it makes a
 * character diff that merges with concurrent edits. A change from elsewhere (another device, another
 * tab) is folded into the draft the same way, and the caret moves with the text around it.
 */
export function ClinicalNote({ db, id, value }: { db: ClinicalDatabaseLike; id: RecordId; value: string }) {
  const [draft, setDraft] = useState(value);
  const [state, setState] = useState<"saved" | "editing" | "saving" | "failed">("saved");
  const [failure, setFailure] = useState("");
  const area = useRef<HTMLTextAreaElement>(null);
  // The document text the draft is based on: the draft minus this textarea's unsaved edits.
  const base = useRef(value);
  const draftRef = useRef(value);
  const saving = useRef(false);
  const latestValue = useRef(value);
  const timer = useRef<ReturnType<typeof setTimeout> | null>(null);
  const pendingCaret = useRef<[number, number] | null>(null);

  /** Replaces the draft with text that did not come from the keyboard, keeping the caret in place. */
  const replaceDraft = useCallback((next: string) => {
    const before = draftRef.current;
    if (next === before) return;
    const el = area.current;
    if (el && document.activeElement === el) {
      pendingCaret.current = [
        mapCaret(el.selectionStart, before, next),
        mapCaret(el.selectionEnd, before, next),
      ];
    }
    draftRef.current = next;
    setDraft(next);
  }, []);

  /** Folds the document's latest text into the draft (unless a save is running: it does that itself). */
  const absorb = useCallback(() => {
    const current = latestValue.current;
    if (saving.current || current === base.current) return;
    replaceDraft(rebaseText(base.current, draftRef.current, current));
    base.current = current;
  }, [replaceDraft]);

  const save = useCallback(async () => {
    if (timer.current) clearTimeout(timer.current);
    timer.current = null;
    if (saving.current) return;
    const local = draftRef.current;
    if (local === base.current) {
      setState("saved");
      return;
    }
    saving.current = true;
    setState("saving");
    const from = base.current;
    let merged = local;
    try {
      await db.patients.update(id, (p) => {
        merged = rebaseText(from, local, typeof p.notes === "string" ? p.notes : "");
        p.notes = merged;
      });
    } catch (cause) {
      // The patient was deleted meanwhile (on another device, say): nothing left to save the note to.
      setState("failed");
      setFailure(cause instanceof Error ? cause.message : String(cause));
      return;
    } finally {
      saving.current = false;
    }
    // Typing during the save is replayed on top of what was saved.
    base.current = merged;
    replaceDraft(rebaseText(local, draftRef.current, merged));
    absorb();
    if (draftRef.current !== base.current) scheduleSave();
    else setState("saved");
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [db, id, absorb, replaceDraft]);

  const scheduleSave = useCallback(() => {
    if (timer.current) clearTimeout(timer.current);
    timer.current = setTimeout(() => void save(), SAVE_DELAY_MS);
  }, [save]);

  useEffect(() => {
    latestValue.current = value;
    absorb();
  }, [value, absorb]);

  // Save what is pending when the page goes away (navigation inside the app, or the patient deleted).
  useEffect(() => () => void save(), [save]);

  useLayoutEffect(() => {
    const caret = pendingCaret.current;
    if (caret && area.current) area.current.setSelectionRange(caret[0], caret[1]);
    pendingCaret.current = null;
  }, [draft]);

  return (
    <div className="clinical-note">
      <textarea
        ref={area}
        aria-label="Clinical note"
        value={draft}
        rows={8}
        onChange={(e) => {
          draftRef.current = e.target.value;
          setDraft(e.target.value);
          setState("editing");
          scheduleSave();
        }}
        onBlur={() => void save()}
        placeholder="Observations, plan, follow-up… Colleagues can write here at the same time."
      />
      <p className="hint" aria-live="polite" data-testid="note-state">
        {state === "saved"
          ? "Saved on this device"
          : state === "saving"
            ? "Saving…"
            : state === "failed"
              ? `Not saved: ${failure}`
              : "Editing…"}
      </p>
    </div>
  );
}

/** The part of the database the note needs. */
type ClinicalDatabaseLike = Pick<ClinicDatabase, "patients">;
