import { useId, useState, type ReactNode } from "react";
import { QrImage } from "./qr/qr-image.tsx";

/**
 * A link that admits a device (an invitation, or a link to another device of one's own), shown as a QR
 * code and as text with a copy button. The text field is read-only and selects itself on focus, so the
 * link can be copied by hand where the clipboard is refused.
 *
 * @example
 * <SharedLink link={link} label="Invitation link" qrLabel="QR code of the invitation" testId="invite-link">
 *   Open this link on the new device, or scan the code.
 * </SharedLink>
 */
export function SharedLink({
  link,
  label,
  qrLabel,
  testId,
  children,
}: {
  link: string;
  /** The text field's label. */
  label: string;
  /** What the QR code is, for screen readers. */
  qrLabel: string;
  testId: string;
  /** What to do with the link, shown above it. */
  children: ReactNode;
}) {
  const fieldId = useId();
  const [copied, setCopied] = useState<{ link: string; how: "copied" | "manual" } | null>(null);

  async function copy() {
    try {
      await navigator.clipboard.writeText(link);
      setCopied({ link, how: "copied" });
    } catch {
      // Headless browsers and some embeds refuse the clipboard: the field is selectable instead.
      setCopied({ link, how: "manual" });
      document.getElementById(fieldId)?.focus();
    }
  }

  // A new link is not copied yet, whatever happened to the previous one.
  const how = copied?.link === link ? copied.how : null;
  return (
    <div className="invite-result">
      <QrImage text={link} label={qrLabel} />
      <div>
        <p>{children}</p>
        <label>
          {label}
          <input
            id={fieldId}
            readOnly
            value={link}
            onFocus={(e) => e.currentTarget.select()}
            data-testid={testId}
          />
        </label>
        <button type="button" onClick={() => void copy()}>
          Copy link
        </button>
        <p className="hint" aria-live="polite">
          {how === "copied"
            ? "Copied to the clipboard."
            : how === "manual"
              ? "Select the link and copy it."
              : ""}
        </p>
      </div>
    </div>
  );
}
