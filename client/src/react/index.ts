/**
 * React bindings for @shoal/client.
 *
 * @example
 * import { useLiveQuery } from "@shoal/client/react";
 * const patients = useLiveQuery(() => db.patients.orderBy("name").toArray(), [db]) ?? [];
 */
export { useLiveQuery } from "./use-live-query.ts";
export * from "./use-text-field.ts"; // useTextField and its types
