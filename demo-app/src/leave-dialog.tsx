import type { Space } from "@shoal/client";
import { useState } from "react";
import type { ClinicDatabase } from "./db.ts";
import { ModalDialog } from "./modal-dialog.tsx";

/**
 * Confirms leaving the clinic shown, then removes it and all its data from this device (`db.leave`).
 * Also the way out of a wrong join. What this device wrote and already synced stays with the others;
 * what it has not synced yet is lost, so the dialog says how much that is.
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
  onLeft(): void;
}) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const pending = db.status.get().pendingCommits;

  async function leave() {
    setBusy(true);
    try {
      await db.leave(clinic);
      onLeft();
    } catch (e) {
      setError(e instanceof Error ? e.message : String(e));
      setBusy(false);
    }
  }

  return (
    <ModalDialog title={`Leave ${clinic.name}?`} onClose={onClose}>
      <p>
        Every patient, visit and note of {clinic.name} is removed from this device, and it stops syncing this
        clinic. Colleagues keep everything; you can join again with a new invitation link.
      </p>
      {pending > 0 && (
        <p role="alert" className="warning">
          {pending === 1 ? "1 change" : `${pending} changes`} of this device have not reached the relay yet
          and may be lost.
        </p>
      )}
      {error && (
        <p role="alert" className="sync-error">
          Could not leave: {error}
        </p>
      )}
      <div className="dialog-actions">
        <button type="button" className="danger" disabled={busy} onClick={() => void leave()}>
          Leave and remove data
        </button>
        <button type="button" className="secondary" disabled={busy} onClick={onClose}>
          Cancel
        </button>
      </div>
    </ModalDialog>
  );
}
