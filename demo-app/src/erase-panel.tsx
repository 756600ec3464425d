import type { ErasureStatus, RecordId } from "@shoal/client";
import { useEffect, useState } from "react";
import type { ClinicDatabase } from "./db.ts";

/** `db.erasure(id)`, live: undefined until the first reading. */
export function useErasure(db: ClinicDatabase, id: string): ErasureStatus | undefined {
  const [status, setStatus] = useState<{ id: string; status: ErasureStatus } | undefined>();
  useEffect(() => {
    const sub = db.erasure(id).subscribe({
      next: (s) => setStatus({ id, status: s }),
      error: () => setStatus(undefined),
    });
    return () => sub.unsubscribe();
  }, [db, id]);
  return status?.id === id ? status.status : undefined;
}

/** The receipts of an erase, as people read them. */
export function ErasureReceipts({ status }: { status: ErasureStatus }) {
  return (
    <p data-testid="erasure-receipts">
      Erased on {status.erased} of {status.of} devices
      {status.relayCompacted ? ", relay compacted" : ""}
    </p>
  );
}

/**
 * "Erase patient (GDPR)", for admins: erases the patient and their visits for good on every device
 * (`db.patients.erase`, a signed operation), unlike Delete, whose history stays in the audit log.
 */
export function ErasePatientButton({ db, id, name }: { db: ClinicDatabase; id: RecordId; name: string }) {
  const [confirming, setConfirming] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const erase = async () => {
    setBusy(true);
    try {
      // The visits hold the patient's data too: they go first, then the patient.
      for (const v of await db.visits.where("[patientId+date]").between([id, ""], [id, "\uffff"]).toArray())
        await db.visits.erase(v.id);
      await db.patients.erase(id);
    } catch (cause) {
      setError(cause instanceof Error ? cause.message : String(cause));
      setBusy(false);
    }
  };
  return (
    <>
      <button type="button" className="danger" onClick={() => setConfirming(true)}>
        Erase patient (GDPR)
      </button>
      {confirming && (
        <div className="confirm card" role="alertdialog" aria-labelledby="confirm-erase">
          <p id="confirm-erase">
            Erase {name} for good, with their history and visits, on every device? This cannot be undone: each
            device confirms with a signed receipt.
          </p>
          <div className="dialog-actions">
            <button type="button" className="danger" disabled={busy} onClick={() => void erase()}>
              Erase for good
            </button>
            <button type="button" className="secondary" onClick={() => setConfirming(false)} autoFocus>
              Cancel
            </button>
          </div>
          {error && (
            <p role="alert" className="error">
              Could not erase: {error}
            </p>
          )}
        </div>
      )}
    </>
  );
}
