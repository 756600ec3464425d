import type { ClinicPageProps } from "./clinic-page-props.ts";
import { RefusalMessage } from "./refusal-message.tsx";
import { useLinkMaker } from "./use-link-maker.ts";

/**
 * Lets an admin export the clinic's recovery key: a single-use admin invitation that never expires. If
 * every admin device is lost, opening it on a new device makes that device an admin. It is shown once,
 * to print or save offline, with what losing it (or leaking it) means.
 */
export function RecoveryKeyPanel({ db, clinic }: Pick<ClinicPageProps, "db" | "clinic">) {
  const { link: key, error, busy, make } = useLinkMaker();

  function download() {
    if (!key) return;
    const url = URL.createObjectURL(
      new Blob([`${clinic.name} recovery key\n\n${key}\n`], { type: "text/plain" }),
    );
    const a = document.createElement("a");
    a.href = url;
    a.download = `${clinic.name} recovery key.txt`;
    a.click();
    URL.revokeObjectURL(url);
  }

  return (
    <section className="card" aria-labelledby="recovery-heading">
      <h2 id="recovery-heading">Recovery key</h2>
      <p className="hint">
        If every admin device of {clinic.name} is lost, a recovery key makes a new device an admin. Keep it
        offline, like a master key: whoever holds it can take over staff management. Without it, and with
        every admin device gone, nobody can invite or remove staff any more (the patients stay readable and
        editable by the staff who have them). It appears under open invitations as an admin invitation, where
        you can revoke it and make a new one.
      </p>
      {key ? (
        <>
          <textarea
            readOnly
            value={key}
            rows={4}
            data-testid="recovery-key"
            onFocus={(e) => e.currentTarget.select()}
          />
          <div className="dialog-actions">
            <button type="button" onClick={download}>
              Save as a file
            </button>
          </div>
        </>
      ) : (
        <button
          type="button"
          onClick={() =>
            void make(() => db.exportRecoveryKey(clinic, { base: `${location.origin}${location.pathname}` }))
          }
          disabled={busy}
        >
          Create a recovery key
        </button>
      )}
      {error !== null && <RefusalMessage error={error} clinicName={clinic.name} />}
    </section>
  );
}
