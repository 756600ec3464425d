import type { Space } from "@shoal/client";
import { useEffect, useState } from "react";
import type { ClinicDatabase } from "./db.ts";
import { ModalDialog } from "./modal-dialog.tsx";

/**
 * Shows the invitation link of the clinic and copies it. The key is in the fragment, which browsers
 * never send to a server: whoever holds the link can read and write the clinic, so it is shown, not
 * posted anywhere.
 */
export function InviteDialog({
  db,
  clinic,
  onClose,
}: {
  db: ClinicDatabase;
  clinic: Space;
  onClose(): void;
}) {
  const [link, setLink] = useState<string | null>(null);
  const [copied, setCopied] = useState<"idle" | "copied" | "manual">("idle");

  useEffect(() => {
    let current = true;
    // The app lives at the origin's root; `invite` appends the fragment to it.
    void db.invite(clinic.id, `${location.origin}${location.pathname}`).then((l) => current && setLink(l));
    return () => {
      current = false;
    };
  }, [db, clinic.id]);

  async function copy() {
    if (!link) return;
    try {
      await navigator.clipboard.writeText(link);
      setCopied("copied");
    } catch {
      // The clipboard needs a permission headless browsers and some embeds refuse: selecting the text
      // lets the person copy it by hand instead.
      setCopied("manual");
      document.getElementById("invite-link")?.focus();
    }
  }

  return (
    <ModalDialog title={`Invite a device to ${clinic.name}`} onClose={onClose}>
      <p>Open this link on the other device. It carries the clinic's key: share it only with colleagues.</p>
      <label>
        Invitation link
        <input
          id="invite-link"
          readOnly
          value={link ?? "Preparing…"}
          onFocus={(e) => e.currentTarget.select()}
          data-testid="invite-link"
        />
      </label>
      <div className="dialog-actions">
        <button type="button" onClick={() => void copy()} disabled={!link}>
          Copy link
        </button>
        <button type="button" className="secondary" onClick={onClose}>
          Done
        </button>
      </div>
      <p className="hint" aria-live="polite">
        {copied === "copied"
          ? "Copied to the clipboard."
          : copied === "manual"
            ? "Select the link and copy it."
            : ""}
      </p>
    </ModalDialog>
  );
}
