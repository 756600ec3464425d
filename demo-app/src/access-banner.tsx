import type { Space } from "@shoal/client";
import { useSyncStatus } from "@shoal/client/react";
import { useRef } from "react";
import type { ClinicDatabase } from "./db.ts";
import { useMembers } from "./use-members.ts";

/**
 * Says, above everything, when this device may not change the clinic shown: it was removed (the
 * membership log says so, or the relay refused it as removed: a device that was offline during its
 * removal learns it that way), or its role is reader. The patient pages stay readable either way; writes
 * fail with NotPermitted, which the forms explain.
 */
export function AccessBanner({ db, clinic }: { db: ClinicDatabase; clinic: Space }) {
  const view = useMembers(db, clinic.id);
  const status = useSyncStatus(db);
  // The engine retries a refused connection and shows "connecting" meanwhile: once refused as removed,
  // stay told so for this clinic.
  const removedFor = useRef<string | null>(null);
  const own = status.transports.find((t) => t.space === clinic.id);
  if (
    own?.state === "refused" &&
    status.lastError?.code === "AccessDenied" &&
    status.lastError.reason === "removed"
  )
    removedFor.current = clinic.id;
  const removed = removedFor.current === clinic.id || (view?.removedDevices.includes(db.deviceId) ?? false);

  if (removed)
    return (
      <p role="alert" className="access-banner removed" data-testid="access-banner" data-reason="removed">
        You no longer have access to {clinic.name}. This device was removed from its staff: it keeps what it
        had, but receives nothing new and its changes are not shared.
      </p>
    );
  if (view?.role === "reader")
    return (
      <p className="access-banner" data-testid="access-banner" data-reason="reader">
        Read only: you can read {clinic.name} but not change it (your role is reader).
      </p>
    );
  return null;
}
