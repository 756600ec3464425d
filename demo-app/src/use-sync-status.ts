import { useEffect, useState } from "react";
import type { ClinicDatabase } from "./db.ts";

/**
 * The status `db.status` publishes. Derived from the database's type because `@shoal/client` does not
 * export `SyncStatus` (reported as an API gap).
 */
export type ClinicSyncStatus = ReturnType<ClinicDatabase["status"]["get"]>;

/** The database's sync status as React state; `db.status` delivers the current value on subscribe. */
export function useSyncStatus(db: ClinicDatabase): ClinicSyncStatus {
  const [status, setStatus] = useState<ClinicSyncStatus>(() => db.status.get());
  useEffect(() => {
    const sub = db.status.subscribe(setStatus);
    return () => sub.unsubscribe();
  }, [db]);
  return status;
}
