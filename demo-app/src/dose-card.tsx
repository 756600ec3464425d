import type { Conflict, RecordId, SpaceId } from "@shoal/client";
import { useEffect, useState, type FormEvent } from "react";
import { ClaimedTime } from "./claimed-time.tsx";
import type { ClinicDatabase } from "./db.ts";
import { asText } from "./safe-values.ts";
import { useMemberNames } from "./use-member-names.ts";

/** The conflicted inbox fields of one patient, live (`db.conflicts()`). */
function usePatientConflicts(db: ClinicDatabase, id: RecordId): readonly Conflict[] {
  const [list, setList] = useState<readonly Conflict[]>([]);
  useEffect(() => {
    const sub = db.conflicts({ collections: ["patients"] }).subscribe({
      next: (all) => setList(all.filter((c) => c.id === id)),
      // The inbox is an aid: a failed read leaves the last list shown rather than breaking the page.
      error: () => undefined,
    });
    return () => sub.unsubscribe();
  }, [db, id]);
  return list;
}

/**
 * The patient's current dose, and its inbox: when two devices entered different doses at the same
 * time (offline, or before seeing each other's), every value is listed with who entered it and when,
 * and keeping one is an ordinary change that clears the inbox on every device.
 */
export function DoseCard({
  db,
  clinicId,
  id,
  dose,
}: {
  db: ClinicDatabase;
  clinicId: SpaceId;
  id: RecordId;
  dose: string;
}) {
  const [input, setInput] = useState("");
  const owners = useMemberNames(db, clinicId);
  const conflict = usePatientConflicts(db, id).find((c) => c.field === "dose");

  async function save(event: FormEvent) {
    event.preventDefault();
    const value = input.trim();
    if (!value) return;
    setInput("");
    await db.patients.update(id, (p) => void (p.dose = value));
  }

  return (
    <div className="dose">
      <p data-testid="dose">{dose || "No dose recorded."}</p>
      <form className="inline-form" onSubmit={(e) => void save(e)}>
        <label>
          <span className="visually-hidden">New dose</span>
          <input
            value={input}
            onChange={(e) => setInput(e.target.value)}
            placeholder="e.g. 10 mg twice daily"
          />
        </label>
        <button type="submit">Set dose</button>
      </form>
      {conflict && (
        <section className="inbox" aria-label="Inbox" role="region">
          <h3>Inbox: doses entered at the same time</h3>
          <p className="muted">
            Check which one is right and keep it; the others are then set aside everywhere.
          </p>
          <ul>
            {conflict.values.map((v) => {
              const value = asText(v.value);
              const who = v.person?.name ?? (v.device && owners.get(v.device)?.person) ?? "another device";
              return (
                <li key={v.op} data-testid="inbox-value">
                  <strong>{value}</strong> · {who}
                  {v.at !== undefined && (
                    <>
                      {" · "}
                      <ClaimedTime at={v.at} style="time" />
                    </>
                  )}{" "}
                  <button type="button" onClick={() => void db.patients.resolve(id, "dose", value)}>
                    Keep {value}
                  </button>
                </li>
              );
            })}
          </ul>
          {conflict.omitted > 0 && <p className="muted">And {conflict.omitted} more not shown.</p>}
        </section>
      )}
    </div>
  );
}
