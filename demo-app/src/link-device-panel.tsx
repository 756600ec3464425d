import type { MemberView } from "@shoal/client";
import type { ClinicPageProps } from "./clinic-page-props.ts";
import { RefusalMessage } from "./refusal-message.tsx";
import { SharedLink } from "./shared-link.tsx";
import { useLinkMaker } from "./use-link-maker.ts";

/**
 * Adds another device of the person using this one (`db.linkDevice`): a single-use link, valid for an
 * hour, that the other device opens like an invitation. It joins as this person, with this person's
 * role, so the staff list shows one person with one more device rather than a new colleague. Any
 * member may do this for themselves; no admin is needed.
 */
export function LinkDevicePanel({
  db,
  clinic,
  me,
}: Pick<ClinicPageProps, "db" | "clinic"> & { me: MemberView }) {
  const { link, error, busy, make } = useLinkMaker();

  return (
    <section className="card invite" aria-labelledby="link-device-heading">
      <h2 id="link-device-heading">Your other devices</h2>
      <p className="hint">
        Use {clinic.name} on another phone, tablet or computer of yours as {me.name}, with your role (
        {me.role}). That device shows up under your name in the staff list.
      </p>
      <button type="button" onClick={() => void make(() => db.linkDevice(clinic))} disabled={busy}>
        Link another device of mine
      </button>
      <RefusalMessage error={error} clinicName={clinic.name} />
      {link && (
        <SharedLink
          link={link}
          label="Link for your other device"
          qrLabel={`QR code linking another device of ${me.name} to ${clinic.name}`}
          testId="device-link"
        >
          Open this link on your other device, or scan the code there. It works once, within an hour; keep it
          to yourself, as whoever opens it joins as you.
        </SharedLink>
      )}
    </section>
  );
}
