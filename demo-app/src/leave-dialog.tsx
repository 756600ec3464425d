import type { Space } from "@shoal/client";
import { useState } from "react";
import type { ClinicDatabase } from "./db.ts";
import type { LeaveOutcome } from "./leave-outcome-notice.tsx";
import { ModalDialog } from "./modal-dialog.tsx";
import { useMembers } from "./use-members.ts";

/**
 * Confirms leaving the clinic shown, then removes it and all its data from this device (`db.leave`).
 * Also the way out of a wrong join. What this device wrote and already synced stays with the others;
 * what it has not synced yet is lost, so the dialog says how much that is.
 *
 * A member device may instead leave for good (`announce: true`): it writes its own removal into the
 * staff list first and waits a few seconds for the relay to take it. That cannot be undone (a removed
 * device never rejoins), so it asks a second time, and `onLeft` gets how it went to tell the person.
 */
export function LeaveDialog({
  db,
  clinic,
  onClose,
  onLeft,
}: {
  db: ClinicDatabase;
  clinic: Space;
  onClose(): void;
  onLeft(outcome?: LeaveOutcome): void;
}) {
  const [busy, setBusy] = useState(false);
  const [forGood, setForGood] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const pending = db.status.get().pendingCommits;
  const me = useMembers(db, clinic.id)?.members.find((m) => m.you);

  async function leave(announce: boolean) {
    setBusy(true);
    try {
      const { announced } = await db.leave(clinic, { announce });
      onLeft(announce ? { clinicName: clinic.name, announced } : undefined);
    } catch (e) {
      setError(e instanceof Error ? e.message : String(e));
      setBusy(false);
    }
  }

  const unsynced = pending > 0 && (
    <p role="alert" className="warning">
      {pending === 1 ? "1 change" : `${pending} changes`} of this device have not reached the relay yet and
      may be lost.
    </p>
  );
  const failure = error && (
    <p role="alert" className="sync-error">
      Could not leave: {error}
    </p>
  );

  if (forGood && me)
    return (
      <ModalDialog title={`Leave ${clinic.name} for good?`} onClose={onClose}>
        <p>
          This device is removed from the staff list of {clinic.name}, and everything of {clinic.name} is
          deleted from it. <strong>This device can never rejoin {clinic.name}</strong>, not even with a new
          invitation.
        </p>
        <p>
          {me.devices.length > 1
            ? `${me.name} stays on the staff list with their other devices.`
            : `This is the only device of ${me.name}, so ${me.name} leaves the staff list: coming back takes a new invitation, opened on another device.`}
        </p>
        {unsynced}
        {busy && <p aria-live="polite">Telling the others through the relay (a few seconds at most)…</p>}
        {failure}
        <div className="dialog-actions">
          <button type="button" className="danger" disabled={busy} onClick={() => void leave(true)}>
            Yes, leave for good
          </button>
          <button type="button" className="secondary" disabled={busy} onClick={() => setForGood(false)}>
            Back
          </button>
        </div>
      </ModalDialog>
    );

  return (
    <ModalDialog title={`Leave ${clinic.name}?`} onClose={onClose}>
      <p>
        Every patient, visit and note of {clinic.name} is removed from this device, and it stops syncing this
        clinic. Colleagues keep everything; you can join again with a new invitation link.
      </p>
      {me && (
        <p className="hint">
          Or leave for good: this device also disappears from the staff list everywhere, and can never join{" "}
          {clinic.name} again.
        </p>
      )}
      {unsynced}
      {failure}
      <div className="dialog-actions">
        <button type="button" className="danger" disabled={busy} onClick={() => void leave(false)}>
          Leave and remove data
        </button>
        {me && (
          <button type="button" className="danger" disabled={busy} onClick={() => setForGood(true)}>
            Leave for good (remove this device from the staff list)
          </button>
        )}
        <button type="button" className="secondary" disabled={busy} onClick={onClose}>
          Cancel
        </button>
      </div>
    </ModalDialog>
  );
}
