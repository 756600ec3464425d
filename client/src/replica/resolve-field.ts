import { ValidationError } from "../errors.ts";
import type { CollectionSpec } from "./collection-spec.ts";

/**
 * Writes the chosen value of a conflicted inbox field into an update draft: one ordinary Automerge put
 * (a delete for `undefined`), which supersedes every concurrent value this replica holds, so the
 * conflict is gone on every replica that receives the commit. Refuses a field the collection did not
 * declare `conflicts: "inbox"`, and a path whose parent object does not exist.
 *
 * @example
 * await db.transact((tx) => tx.collection("patients").update(id, (d) => resolveField(d, spec, "dose", 5)));
 */
export function resolveField(
  draft: Record<string, unknown>,
  spec: CollectionSpec,
  field: string,
  value: unknown,
): void {
  if (!spec.inbox.has(field)) {
    throw new ValidationError(`Field "${field}" of ${spec.name} is not declared conflicts: "inbox".`);
  }
  const parts = field.split(".");
  const key = parts.pop()!;
  let parent: unknown = draft;
  for (const p of parts) parent = (parent as Record<string, unknown> | undefined)?.[p];
  if (parent === null || typeof parent !== "object" || Array.isArray(parent)) {
    throw new ValidationError(`Cannot resolve "${field}": its parent object does not exist.`);
  }
  if (value === undefined) delete (parent as Record<string, unknown>)[key];
  else (parent as Record<string, unknown>)[key] = value;
}
