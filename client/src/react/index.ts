/**
 * React bindings for @shoal/client.
 *
 * @example
 * import { useLiveQuery, useSyncStatus } from "@shoal/client/react";
 * const patients = useLiveQuery(() => db.patients.orderBy("name").toArray(), [db]) ?? [];
 * const status = useSyncStatus(db); // re-renders when db.status changes
 *
 * @module @shoal/client/react
 */
export { useLiveQuery } from "./use-live-query.ts";
export * from "./use-text-field.ts"; // useTextField and its types
export { useSyncStatus, type SyncStatusSource } from "./use-sync-status.ts";
