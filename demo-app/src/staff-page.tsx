import type { ClinicPageProps } from "./clinic-page-props.ts";
import { InvitationList } from "./invitation-list.tsx";
import { InviteForm } from "./invite-form.tsx";
import { LinkDevicePanel } from "./link-device-panel.tsx";
import { MemberTable } from "./member-table.tsx";
import { RecoveryKeyPanel } from "./recovery-key-panel.tsx";
import { useMembers } from "./use-members.ts";

/**
 * Who may read and write this clinic: its staff with roles and devices, new invitations, and the ones
 * still open. Only admins change anything; everyone else sees the list. A clinic with no staff list yet
 * (every device holding its old key link may write) starts one with its first invitation. Every member
 * may link another device of their own.
 */
export function StaffPage({ db, clinic, deviceName }: ClinicPageProps) {
  const view = useMembers(db, clinic.id);
  if (!view) return <p className="muted">Loading…</p>;
  const admin = view.role === "admin";
  const me = view.members.find((m) => m.you);
  return (
    <div className="staff-page">
      <h1>Staff of {clinic.name}</h1>
      {!view.managed && (
        <p className="hint" data-testid="staff-unmanaged">
          {clinic.name} has no staff list yet: every device that joined it may read and write. Your first
          invitation starts the list, with you as its admin.
        </p>
      )}
      {view.managed && <MemberTable db={db} clinic={clinic} members={view.members} admin={admin} />}
      {me && <LinkDevicePanel db={db} clinic={clinic} me={me} />}
      {(admin || !view.managed) && <InviteForm db={db} clinic={clinic} deviceName={deviceName} />}
      {view.managed && (
        <InvitationList db={db} clinic={clinic} invitations={view.invitations} admin={admin} />
      )}
      {view.managed && admin && <RecoveryKeyPanel db={db} clinic={clinic} />}
      {view.managed && !admin && (
        <p className="hint">Your role is {view.role ?? "none"}: only an admin can invite or remove staff.</p>
      )}
    </div>
  );
}
