import { InvalidBundle, type BundleImportReport, type Space } from "@shoal/client";
// Imported up front rather than through db.exportBundle, which loads this code on first use: the file
// exchange is for a device with no network, where a chunk not yet loaded could not be fetched.
import { exportBundle, importBundle } from "@shoal/client/bundles";
import { useRef, useState } from "react";
import type { ClinicDatabase } from "./db.ts";

/** Extension of the files this demo writes; the import picker suggests it but accepts any file. */
const EXTENSION = ".shoal";

/**
 * Sync by file, for a device with no network: "Export for another device" downloads the clinic's
 * changes as one sealed file (encrypted with the clinic's key, so it can travel on any USB stick or
 * chat), and "Import" applies such a file. The other device must have joined the clinic before.
 *
 * @example
 * <BundleActions db={db} clinic={clinic} />
 */
export function BundleActions({ db, clinic }: { db: ClinicDatabase; clinic: Space }) {
  const input = useRef<HTMLInputElement>(null);
  const [message, setMessage] = useState<{ text: string; error: boolean } | null>(null);
  const [busy, setBusy] = useState(false);

  async function exportFile() {
    setBusy(true);
    try {
      // The whole clinic: the receiver's vector is not known here, and duplicates cost it nothing.
      const bytes = await exportBundle(db, { space: clinic.id });
      download(new Blob([bytes], { type: "application/octet-stream" }), fileName(clinic.name));
      setMessage({ text: "File ready: open it with Import on the other device.", error: false });
    } catch (e) {
      setMessage({ text: `Could not export: ${(e as Error).message}`, error: true });
    } finally {
      setBusy(false);
    }
  }

  async function importFile(file: File | undefined) {
    if (!file) return;
    setBusy(true);
    try {
      setMessage({ text: describe(await importBundle(db, file)), error: false });
    } catch (e) {
      setMessage({ text: explain(e), error: true });
    } finally {
      setBusy(false);
      // The same file may be picked again (after an incomplete copy is replaced, say).
      if (input.current) input.current.value = "";
    }
  }

  return (
    <>
      <button type="button" className="secondary" disabled={busy} onClick={() => void exportFile()}>
        Export for another device
      </button>
      <button type="button" className="secondary" disabled={busy} onClick={() => input.current?.click()}>
        Import
      </button>
      <input
        ref={input}
        type="file"
        accept={`${EXTENSION},application/octet-stream`}
        className="visually-hidden"
        aria-label="Import a file from another device"
        data-testid="bundle-file"
        tabIndex={-1}
        onChange={(e) => void importFile(e.currentTarget.files?.[0])}
      />
      <span
        role="status"
        data-testid="bundle-message"
        className={message?.error ? "hint error" : "hint"}
        style={{ alignSelf: "center" }}
      >
        {message?.text ?? ""}
      </span>
    </>
  );
}

/** What an import did, in the clinic's words. */
function describe(report: BundleImportReport): string {
  const n = report.applied.length;
  const changes = `${n} change${n === 1 ? "" : "s"}`;
  if (!report.complete) return `Incomplete file: imported ${changes}; ask for the file again for the rest.`;
  if (report.missing.length > 0) return `Imported ${changes}; some earlier changes are still missing.`;
  return n === 0 ? "Already up to date: nothing new in this file." : `Imported ${changes}.`;
}

/** Why an import was refused; nothing was changed in any of these cases. */
function explain(e: unknown): string {
  if (e instanceof InvalidBundle) {
    if (e.reason === "unknown-space")
      return "This file is for a clinic this device has not joined. Nothing was imported.";
    if (e.reason === "not-a-bundle")
      return "This is not a file exported by Shoal Clinic. Nothing was imported.";
    return "This file is damaged or was not made for this clinic. Nothing was imported.";
  }
  return `Could not import: ${(e as Error)?.message ?? String(e)}`;
}

/** e.g. `north-clinic-2026-11-25.shoal`. */
function fileName(clinic: string): string {
  const slug =
    clinic
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, "-")
      .replace(/^-|-$/g, "") || "clinic";
  return `${slug}-${new Date().toISOString().slice(0, 10)}${EXTENSION}`;
}

/** Saves a blob through the browser's download, the one way a page can write a file everywhere. */
function download(blob: Blob, name: string): void {
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  // Revoking at once can cancel the download in some browsers; a minute later it has long started.
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}
