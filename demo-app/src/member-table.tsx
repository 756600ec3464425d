import type { MemberView, Role, Space } from "@shoal/client";
import { useState } from "react";
import type { ClinicDatabase } from "./db.ts";
import { RefusalMessage } from "./refusal-message.tsx";

/** A removal waiting for its confirmation: removing rotates the clinic's key and cannot be undone. */
type Pending = { person: string; label: string } | { device: string; label: string };

/**
 * The clinic's staff: each person with their role and devices (this one marked). An admin changes roles,
 * removes a person (every device of theirs), or removes one lost device; both removals ask to confirm.
 */
export function MemberTable({
  db,
  clinic,
  members,
  admin,
}: {
  db: ClinicDatabase;
  clinic: Space;
  members: readonly MemberView[];
  admin: boolean;
}) {
  const [pending, setPending] = useState<Pending | null>(null);
  const [error, setError] = useState<unknown>(null);
  const act = (work: Promise<void>) => {
    setError(null);
    work.catch(setError);
  };

  function confirm() {
    if (!pending) return;
    setPending(null);
    act(db.remove(clinic, "person" in pending ? { person: pending.person } : { device: pending.device }));
  }

  return (
    <section className="card" aria-labelledby="staff-heading">
      <h2 id="staff-heading">Staff</h2>
      <table className="member-table" aria-label="Staff">
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">Role</th>
            <th scope="col">Devices</th>
            {admin && <th scope="col">Actions</th>}
          </tr>
        </thead>
        <tbody>
          {members.map((m) => (
            <tr key={m.person} data-testid="member-row" data-name={m.name}>
              <th scope="row">
                {m.name}
                {m.you && <span className="you"> (you)</span>}
              </th>
              <td>
                {admin && !m.you ? (
                  <select
                    aria-label={`Role of ${m.name}`}
                    value={m.role}
                    onChange={(e) => act(db.setRole(clinic, m.person, e.target.value as Role))}
                  >
                    <option value="admin">admin</option>
                    <option value="writer">writer</option>
                    <option value="reader">reader</option>
                  </select>
                ) : (
                  <span className="role-badge">{m.role}</span>
                )}
              </td>
              <td>
                <ul className="device-list">
                  {m.devices.map((d, n) => (
                    <li key={d.device}>
                      <code title={d.device}>{d.device.slice(0, 8)}</code>
                      {d.you && <strong> this device</strong>}
                      {admin && !d.you && m.devices.length > 1 && (
                        <button
                          type="button"
                          className="link-button"
                          onClick={() =>
                            setPending({ device: d.device, label: `device ${n + 1} of ${m.name}` })
                          }
                        >
                          Remove device
                        </button>
                      )}
                    </li>
                  ))}
                </ul>
              </td>
              {admin && (
                <td>
                  {!m.you && (
                    <button
                      type="button"
                      className="danger"
                      aria-label={`Remove ${m.name}`}
                      onClick={() => setPending({ person: m.person, label: m.name })}
                    >
                      Remove
                    </button>
                  )}
                </td>
              )}
            </tr>
          ))}
        </tbody>
      </table>
      {pending && (
        <div className="confirm" role="group" aria-label="Confirm removal">
          <p>
            Remove {pending.label} from {clinic.name}? Nothing written from now on will be readable to them,
            and what they write after this is dropped by every device.
          </p>
          <button type="button" className="danger" onClick={confirm}>
            Yes, remove {pending.label}
          </button>
          <button type="button" className="secondary" onClick={() => setPending(null)}>
            Cancel
          </button>
        </div>
      )}
      <RefusalMessage error={error} clinicName={clinic.name} />
    </section>
  );
}
