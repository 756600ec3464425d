import type { MemberView, SpaceId } from "@shoal/client";
import { useState, type FormEvent } from "react";
import type { ClinicDatabase } from "./db.ts";
import { deviceLinkOwner } from "./device-link-owner.ts";
import { invitationClinicName } from "./invitation-name.ts";
import { RefusalMessage } from "./refusal-message.tsx";
import { registerDeviceName } from "./register-device-name.ts";

interface Props {
  db: ClinicDatabase;
  /** The invitation link the page was opened with, if any. */
  invitation: string | null;
  deviceName: string | null;
  onReady(deviceName: string, clinicId: SpaceId): void;
}

/**
 * First run: name this device, then create a clinic (a new space) or join one with an invitation
 * link. Opening an invitation link lands here too, with the link already filled in.
 */
export function FirstRun({ db, invitation, deviceName, onReady }: Props) {
  const [name, setName] = useState(deviceName ?? "");
  const [clinicName, setClinicName] = useState("");
  const [link, setLink] = useState(invitation ?? "");
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  /** Joined as another device of someone on the staff list: said once before the clinic opens. */
  const [linked, setLinked] = useState<{ clinicId: SpaceId; owner: MemberView } | null>(null);
  const invitedTo = invitation ? invitationClinicName(invitation) : null;

  /** `open`: the clinic has no staff list, so this device records its name in it for the audit view. */
  async function run(action: () => Promise<SpaceId>, open: boolean) {
    const device = name.trim();
    if (!device) {
      setError(new Error("Give this device a name first, so colleagues can tell its changes apart."));
      return;
    }
    setBusy(true);
    setError(null);
    try {
      const clinicId = await action();
      if (open) await registerDeviceName(db, clinicId, device);
      // A link from "Link another device of mine" reads like any invitation until it is redeemed; only
      // then does the staff list say whose device this became, and the name typed above was not used.
      const owner = open ? undefined : await deviceLinkOwner(db, clinicId);
      if (owner) setLinked({ clinicId, owner });
      else onReady(device, clinicId);
    } catch (cause) {
      setError(cause);
      setBusy(false);
    }
  }

  const create = (event: FormEvent) => {
    event.preventDefault();
    void run(async () => (await db.createSpace({ name: clinicName.trim() || "My clinic" })).id, true);
  };
  const join = (event: FormEvent) => {
    event.preventDefault();
    const text = link.trim();
    // A member invitation makes this device a member under its name (the staff list shows it); an open
    // clinic's key link just adds the clinic.
    const member = /#invite=/.test(text);
    void run(async () => (await db.join(text, { name: name.trim() })).id, !member);
  };

  if (linked) {
    const { owner } = linked;
    return (
      <main className="first-run">
        <h1>Shoal Clinic</h1>
        <section className="card" aria-labelledby="linked-heading" data-testid="device-linked">
          <h2 id="linked-heading">Joined {invitedTo ?? "the clinic"}</h2>
          <p>
            This device is now another device of {owner.name}, with the role {owner.role}. The staff list
            shows {owner.name} once, with {owner.devices.length} devices.
          </p>
          <button type="button" onClick={() => onReady(name.trim(), linked.clinicId)}>
            Open {invitedTo ?? "the clinic"}
          </button>
        </section>
      </main>
    );
  }

  return (
    <main className="first-run">
      <h1>Shoal Clinic</h1>
      <p className="lead">
        Patient records that live on this device, keep working offline, and sync end-to-end encrypted with
        your colleagues.
      </p>
      <section className="card">
        <label>
          Device name
          <input
            value={name}
            onChange={(e) => setName(e.target.value)}
            placeholder="Reception desk"
            autoComplete="off"
            autoFocus
          />
        </label>
        <p className="hint">Shown to colleagues next to the changes made on this device.</p>
      </section>
      {invitation ? (
        <form className="card" onSubmit={join} aria-labelledby="join-heading">
          <h2 id="join-heading">Join {invitedTo ?? "a clinic"}</h2>
          <p className="hint">You opened an invitation link. Its secret stays in this browser.</p>
          <p className="hint">
            A link from “Link another device of mine” makes this device another device of the person who made
            it, under their name and role; the device name above then only labels this device.
          </p>
          <button type="submit" disabled={busy}>
            Join clinic
          </button>
        </form>
      ) : (
        <div className="first-run-choices">
          <form className="card" onSubmit={create} aria-labelledby="create-heading">
            <h2 id="create-heading">Create a clinic</h2>
            <label>
              Clinic name
              <input
                value={clinicName}
                onChange={(e) => setClinicName(e.target.value)}
                placeholder="North Clinic"
              />
            </label>
            <button type="submit" disabled={busy}>
              Create clinic
            </button>
          </form>
          <form className="card" onSubmit={join} aria-labelledby="join-heading">
            <h2 id="join-heading">Join a clinic</h2>
            <label>
              Invitation link
              <input
                value={link}
                onChange={(e) => setLink(e.target.value)}
                placeholder="https://…#invite=…"
              />
            </label>
            <button type="submit" disabled={busy || !link.trim()}>
              Join
            </button>
          </form>
        </div>
      )}
      <RefusalMessage error={error} clinicName={invitedTo ?? "the clinic"} testId="join-error" />
    </main>
  );
}
