import type { CommitId, HistoryEntry, RecordId, RowOf } from "@shoal/client";
import { useLiveQuery } from "@shoal/client/react";
import { useEffect, useState } from "react";
import type { ClinicDatabase, Patient } from "./db.ts";
import { ClaimedTime } from "./claimed-time.tsx";
import { asText, asTextList } from "./safe-values.ts";
import { useMemberNames } from "./use-member-names.ts";
import { useMembers } from "./use-members.ts";

/** Fields shown in a past version, in this order; `terms` and `clinic` are bookkeeping. */
const SHOWN: readonly (keyof Patient)[] = [
  "name",
  "birthDate",
  "sex",
  "mrn",
  "phone",
  "ward",
  "tags",
  "notes",
];
const HIDDEN_PATHS = new Set(["terms", "clinic"]);

/** A field's value as text, whatever JSON another device put there. */
function show(value: unknown): string {
  if (Array.isArray(value)) return asTextList(value).join(", ") || "—";
  return asText(value) || "—";
}

/**
 * The audit trail of one patient: every commit that changed it (person and device, time, fields), oldest
 * first; a change whose device no signature proves is marked unverified.
 * Selecting one shows the record as it was right after that commit, next to how it is now.
 */
export function AuditPanel({ db, clinicId, id }: { db: ClinicDatabase; clinicId: string; id: RecordId }) {
  const entries = useLiveQuery(() => db.patients.history(id), [db, id]);
  const current = useLiveQuery(() => db.patients.get(id), [db, id]);
  const names = useMemberNames(db, clinicId);
  const [selected, setSelected] = useState<CommitId | null>(null);
  const [past, setPast] = useState<RowOf<Patient> | null>(null);
  const [restoring, setRestoring] = useState<"idle" | "busy" | "done" | string>("idle");
  const members = useMembers(db, clinicId);
  // Restoring is a write: readers see the versions, not the button.
  const mayWrite = !members?.managed || (members.role !== undefined && members.role !== "reader");
  const isAdmin = !members?.managed || members.role === "admin";

  const restore = (commit: CommitId) => {
    setRestoring("busy");
    db.patients.restore(id, commit).then(
      () => setRestoring("done"),
      (e: unknown) => setRestoring(e instanceof Error ? e.message : "The version could not be restored."),
    );
  };

  useEffect(() => {
    setRestoring("idle");
    if (!selected) return setPast(null);
    let live = true;
    db.patients.readAt(id, selected).then(
      (row) => live && setPast(row),
      () => live && setPast(null),
    );
    return () => {
      live = false;
    };
  }, [db, id, selected]);

  if (!entries) return <p className="muted">Loading…</p>;
  // The person, then which of their devices: a lost tablet's changes stay told apart from the desk's.
  const who = (e: HistoryEntry) => {
    const owner = names.get(e.device);
    const person = owner?.person ?? "Unknown member";
    if (e.device === db.deviceId) return `${person} (this device)`;
    const device =
      owner?.deviceName && owner.deviceName !== person ? owner.deviceName : `device ${e.device.slice(0, 8)}`;
    return `${person} · ${device}${owner?.removed ? " (removed)" : ""}`;
  };

  return (
    <div className="audit">
      <ol className="audit-list" aria-label="Changes">
        {entries.map((e) => {
          const fields = e.paths.filter((p) => !HIDDEN_PATHS.has(p));
          return (
            <li key={e.commit}>
              <button
                type="button"
                className={`audit-entry ${selected === e.commit ? "selected" : ""}`}
                aria-pressed={selected === e.commit}
                onClick={() => setSelected(selected === e.commit ? null : e.commit)}
              >
                <span className="audit-op">
                  {e.restoredFrom !== undefined
                    ? "Restored"
                    : e.op === "insert"
                      ? "Created"
                      : e.op === "delete"
                        ? "Deleted"
                        : "Edited"}
                </span>
                <span className="audit-who">{who(e)}</span>
                {!e.verified && (
                  <span
                    className="audit-unverified"
                    title="No signature proves which device made this change: it was handed to the app, not received from a device."
                  >
                    unverified
                  </span>
                )}
                <ClaimedTime at={e.at} />
                <span className="audit-fields">{e.op === "update" ? fields.join(", ") : ""}</span>
              </button>
            </li>
          );
        })}
      </ol>
      {selected && past && (
        <div className="past-version" aria-label="Past version">
          <h3>As it was after this change</h3>
          <table>
            <thead>
              <tr>
                <th scope="col">Field</th>
                <th scope="col">Then</th>
                <th scope="col">Now</th>
              </tr>
            </thead>
            <tbody>
              {SHOWN.map((k) => {
                const then = show(past[k]);
                const now = show(current?.[k]);
                return (
                  <tr key={k} className={then !== now ? "changed" : undefined} data-field={k}>
                    <th scope="row">{k}</th>
                    <td data-testid={`then-${k}`}>{then}</td>
                    <td>{now}</td>
                  </tr>
                );
              })}
            </tbody>
          </table>
          {mayWrite && (
            <p className="restore-version">
              <button type="button" disabled={restoring === "busy"} onClick={() => restore(selected)}>
                Restore this version
              </button>{" "}
              <span role="status" className="muted">
                {restoring === "done"
                  ? "Restored as a new change: the history above keeps every version."
                  : restoring === "busy" || restoring === "idle"
                    ? ""
                    : restoring}
              </span>
            </p>
          )}
        </div>
      )}
      {isAdmin && <ClinicRestore db={db} clinicId={clinicId} />}
    </div>
  );
}

/**
 * Admins only: the whole clinic back to a past time (`db.restore(space, { to })`). Every patient and
 * visit changed since goes back to its version then, as new changes (history is kept); records created
 * after that time are deleted.
 */
function ClinicRestore({ db, clinicId }: { db: ClinicDatabase; clinicId: string }) {
  const [when, setWhen] = useState("");
  const [result, setResult] = useState<string>("");
  const [busy, setBusy] = useState(false);
  const submit = (ev: { preventDefault(): void }) => {
    ev.preventDefault();
    const time = new Date(when).getTime();
    if (!Number.isFinite(time)) return setResult("Pick a date and time.");
    if (
      !window.confirm(
        `Restore the whole clinic to ${new Date(time).toLocaleString()}? Records created since are deleted; history keeps everything.`,
      )
    )
      return;
    setBusy(true);
    db.restore(clinicId as Parameters<ClinicDatabase["restore"]>[0], { to: time }).then(
      (r) => {
        setBusy(false);
        setResult(
          `Restored ${r.restored} record(s), deleted ${r.deleted} created since, in ${r.commits} change(s).`,
        );
      },
      (e: unknown) => {
        setBusy(false);
        setResult(e instanceof Error ? e.message : "The clinic could not be restored.");
      },
    );
  };
  return (
    <form className="clinic-restore" onSubmit={submit} aria-label="Restore clinic">
      <label>
        Restore clinic to…{" "}
        <input type="datetime-local" step="1" value={when} onChange={(e) => setWhen(e.target.value)} />
      </label>{" "}
      <button type="submit" disabled={busy || when === ""}>
        Restore clinic
      </button>{" "}
      <span role="status" className="muted">
        {result}
      </span>
    </form>
  );
}
