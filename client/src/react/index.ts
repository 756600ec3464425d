/**
 * React bindings for @shoal/client.
 *
 * @example
 * import { useLiveQuery } from "@shoal/client/react";
 * const patients = useLiveQuery(() => db.patients.orderBy("name").toArray(), [db]) ?? [];
 */
export { useLiveQuery } from "./use-live-query.ts";
export {
  useTextField,
  type TextFieldBinding,
  type TextFieldOptions,
  type TextFieldStatus,
} from "./use-text-field.ts";
