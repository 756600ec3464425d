import type { Role } from "@shoal/client";
import { useState, type FormEvent } from "react";
import type { ClinicPageProps } from "./clinic-page-props.ts";
import { RefusalMessage } from "./refusal-message.tsx";
import { SharedLink } from "./shared-link.tsx";
import { useLinkMaker } from "./use-link-maker.ts";

const HOUR = 60 * 60_000;
/** How long a new invitation can be redeemed: short by default, as a link may be forwarded. */
const EXPIRIES = [
  { label: "1 hour", ms: HOUR },
  { label: "1 day", ms: 24 * HOUR },
  { label: "7 days", ms: 7 * 24 * HOUR },
] as const;

/**
 * Makes a single-use member invitation with a role and an expiry, and shows it as text and as a QR code.
 * The link carries an invitation secret, never the clinic's key: once redeemed, expired or revoked it
 * admits nobody. The first invitation of a clinic starts its staff list, with this device's name as the
 * creator's.
 */
export function InviteForm({ db, clinic, deviceName }: ClinicPageProps) {
  const [role, setRole] = useState<Role>("writer");
  const [expiry, setExpiry] = useState<number>(EXPIRIES[1].ms);
  const { link, error, busy, make } = useLinkMaker();

  function create(event: FormEvent) {
    event.preventDefault();
    void make(() => db.invite(clinic, { role, expiresIn: expiry, uses: 1, me: deviceName }));
  }

  return (
    <section className="card invite" aria-labelledby="invite-heading">
      <h2 id="invite-heading">Invite a colleague</h2>
      <form className="invite-form" onSubmit={create}>
        <label>
          Role
          <select value={role} onChange={(e) => setRole(e.target.value as Role)}>
            <option value="admin">Admin: manages staff</option>
            <option value="writer">Writer: reads and edits patients</option>
            <option value="reader">Reader: reads only</option>
          </select>
        </label>
        <label>
          Link expires in
          <select value={expiry} onChange={(e) => setExpiry(Number(e.target.value))}>
            {EXPIRIES.map((x) => (
              <option key={x.ms} value={x.ms}>
                {x.label}
              </option>
            ))}
          </select>
        </label>
        <button type="submit" disabled={busy}>
          Create invitation
        </button>
      </form>
      <RefusalMessage error={error} clinicName={clinic.name} />
      {link && (
        <SharedLink
          link={link}
          label="Invitation link"
          qrLabel={`QR code of the invitation to ${clinic.name}`}
          testId="invite-link"
        >
          Open this link on the new device, or scan the code. It works once, for one device.
        </SharedLink>
      )}
    </section>
  );
}
