import { useRef } from "react";
import type { SyncStatus } from "@shoal/client";
import { useSyncStatus } from "@shoal/client/react";
import type { ClinicDatabase } from "./db.ts";
import { formatCount, formatTime, plural } from "./format.ts";
import type { Seeder } from "./use-seeder.ts";

/** The connection in words. "Offline" once a connection has been lost, so a cut reads as one. */
function connectionLabel(status: SyncStatus, everConnected: boolean): string {
  if (!status.online) return "Offline";
  switch (status.state) {
    case "synced":
      return "Online · up to date";
    case "syncing":
      return "Online · syncing";
    case "connecting":
      return everConnected ? "Offline · reconnecting" : "Connecting";
    case "offline":
      return "Offline";
    case "refused":
      return "Refused by the relay";
    default:
      return "Local only";
  }
}

/**
 * Always visible at the bottom: connection, commits waiting for the relay, last sync. Commits made
 * offline are described as kept on this device (they are: strict-durability IndexedDB), never as an
 * error: they sync when the relay is reachable again. A relay that refuses this device's key for the
 * clinic is an error, though: waiting does not fix it, so it is said in words, with what to do.
 */
export function StatusBar({
  db,
  clinicId,
  clinicName,
  seeder,
  syncProblem = null,
}: {
  db: ClinicDatabase;
  clinicId: string;
  clinicName: string;
  seeder: Seeder;
  /** Why sync could not start at all (no WebCrypto on plain http): the app works on this device only. */
  syncProblem?: string | null;
}) {
  const status = useSyncStatus(db);
  const everConnected = useRef(false);
  if (status.state === "synced" || status.state === "syncing") everConnected.current = true;
  // One connection per space; the one of the clinic on screen is the one people care about.
  const own = status.transports.find((t) => t.space === clinicId);
  const relay = own ?? status.transports[0];
  // The engine retries a refused connection every 15-30 s and shows "connecting" meanwhile, so the
  // refusal is remembered until this clinic's connection is accepted (or another clinic is shown).
  const deniedFor = useRef<string | null>(null);
  if (own?.state === "refused") deniedFor.current = clinicId;
  else if (own?.state === "connected" || deniedFor.current !== clinicId) deniedFor.current = null;
  const denied = deniedFor.current === clinicId;
  // The other spaces (this device's private one) may well be synced: the overall state would say so.
  const label = syncProblem
    ? "Not syncing"
    : denied
      ? "Refused by the relay"
      : connectionLabel(status, everConnected.current);
  const offline = label.startsWith("Offline");
  const tone = denied ? "denied" : offline ? "offline" : status.state === "synced" ? "synced" : "busy";

  return (
    <footer className={`status-bar ${tone}`} aria-label="Sync status">
      <span className="status-dot" aria-hidden="true" />
      <span data-testid="sync-state">{label}</span>
      {syncProblem && (
        <span role="alert" className="sync-error" data-testid="sync-error" data-code="InsecureContext">
          {syncProblem} Changes are kept on this device only.
        </span>
      )}
      {denied && (
        <span
          role="alert"
          className="sync-error"
          data-testid="sync-error"
          data-code={status.lastError?.code}
          data-reason={status.lastError?.reason}
        >
          {status.lastError?.reason === "removed" ? (
            <>
              You no longer have access to {clinicName}: the relay refuses this device, which was removed from
              its staff.
            </>
          ) : (
            <>
              Access denied: this device&apos;s key for {clinicName} is not accepted by the relay, so nothing
              syncs. Ask a colleague in the clinic for a new invitation link.
            </>
          )}
        </span>
      )}
      <span data-testid="pending-commits">
        {status.pendingCommits === 0
          ? "All changes on the relay"
          : `${plural(status.pendingCommits, "change")} kept on this device, waiting to sync`}
      </span>
      <span data-testid="last-synced">
        {status.lastSyncedAt ? `Last synced ${formatTime(status.lastSyncedAt)}` : "Not synced yet"}
      </span>
      {relay && (
        <span className="transport" title={relay.label}>
          Relay: {relay.state}
        </span>
      )}
      {seeder.state.running && (
        <span className="seed-progress-mini">
          Loading sample clinic {formatCount(seeder.state.done)}/{formatCount(seeder.state.total)}
        </span>
      )}
    </footer>
  );
}
