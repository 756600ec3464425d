import type { InvitationView, Space } from "@shoal/client";
import { useState } from "react";
import type { ClinicDatabase } from "./db.ts";
import { RefusalMessage } from "./refusal-message.tsx";
import { formatDateTime } from "./format.ts";

/** Whether an invitation can still admit someone (by this device's clock: a hint, the relay decides). */
function isOpen(i: InvitationView, now: number): boolean {
  return !i.revoked && i.used < i.uses && i.expires > now && i.person === undefined;
}

/** The clinic's invitations nobody has redeemed yet, each with a way to withdraw it. */
export function InvitationList({
  db,
  clinic,
  invitations,
  admin,
}: {
  db: ClinicDatabase;
  clinic: Space;
  invitations: readonly InvitationView[];
  admin: boolean;
}) {
  const [error, setError] = useState<unknown>(null);
  const open = invitations.filter((i) => isOpen(i, Date.now()));
  return (
    <section className="card" aria-labelledby="invitations-heading">
      <h2 id="invitations-heading">Open invitations</h2>
      {open.length === 0 ? (
        <p className="muted">No invitation is waiting to be used.</p>
      ) : (
        <ul className="invitation-list" aria-label="Open invitations">
          {open.map((i) => (
            <li key={i.invitation}>
              <span className="role-badge">{i.role}</span>
              <span>expires {formatDateTime(i.expires)}</span>
              {admin && (
                <button
                  type="button"
                  className="secondary"
                  aria-label={`Revoke the ${i.role} invitation expiring ${formatDateTime(i.expires)}`}
                  onClick={() => db.revokeInvitation(clinic, i.invitation).catch(setError)}
                >
                  Revoke
                </button>
              )}
            </li>
          ))}
        </ul>
      )}
      <RefusalMessage error={error} clinicName={clinic.name} />
    </section>
  );
}
