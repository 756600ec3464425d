import { DEFAULT_CONTENT_LIMITS, type ContentLimits } from "../protocol/limits.ts";
import { changeOps } from "./change-ops.ts";
import { checkContent, reservedRootKey } from "./content-check.ts";
import type { Creation } from "./creation.ts";

/** Why a record change breaks the content rules, with a stable reason (`CommitQuarantined.reason`). */
export interface RecordProblem {
  readonly reason: "limits" | "reserved" | "malformed";
  readonly message: string;
}

const enc = new TextEncoder();

/**
 * Checks one record change of a commit against the content limits (PROTOCOL.md 3.2): its Automerge
 * changes (count, bytes, operations each), its creation (nesting, keys, values, the operations it
 * becomes once built, reserved root keys). The writer runs it on every local commit and every receiver
 * on every remote one, so both sides agree on what is acceptable. Returns null when the change is fine.
 * Bounded work: operations are counted from each change's header, content is walked without recursion.
 *
 * @example
 * const p = recordProblem(rc);
 * if (p) throw new ValidationError(`Record ${rc.record}: ${p.message}.`);
 */
export function recordProblem(
  rc: { readonly changes: readonly Uint8Array[]; readonly create?: Creation },
  limits: ContentLimits = DEFAULT_CONTENT_LIMITS,
): RecordProblem | null {
  if (rc.changes.length > limits.maxChangesPerRecord)
    return { reason: "limits", message: `more than ${limits.maxChangesPerRecord} Automerge changes` };
  let bytes = 0;
  for (const ch of rc.changes) {
    bytes += ch.length;
    if (bytes > limits.maxRecordBytes) break;
    const read = changeOps(ch);
    if (read === null) return { reason: "malformed", message: "an Automerge change is not readable" };
    if (read.foreign)
      return {
        reason: "malformed",
        message: "an Automerge change holds marks or tables, which Shoal never makes",
      };
    const { ops } = read;
    if (ops > limits.maxOpsPerChange)
      return {
        reason: "limits",
        message: `an Automerge change of ${ops} operations (at most ${limits.maxOpsPerChange})`,
      };
  }
  if (rc.create) {
    const { json, text, counters } = rc.create;
    const reserved = reservedRootKey(json, false);
    if (reserved !== null) return { reason: "reserved", message: `the field "${reserved}" is reserved` };
    if (text.length + counters.length > limits.maxValuesPerRecord)
      return { reason: "limits", message: "too many text or counter fields" };
    const count = { values: 0, textUnits: 0 };
    const why = checkContent(json, limits, new Set(text), count);
    if (why) return { reason: "limits", message: why };
    if (count.values + count.textUnits > limits.maxOpsPerChange)
      return {
        reason: "limits",
        message: `a creation that builds into ${count.values + count.textUnits} Automerge operations (at most ${limits.maxOpsPerChange})`,
      };
    bytes += enc.encode(JSON.stringify([json, text, counters])).length;
  }
  if (bytes > limits.maxRecordBytes)
    return { reason: "limits", message: `more than ${limits.maxRecordBytes} bytes for one record` };
  return null;
}

/**
 * The Automerge operations a creation counts as (PROTOCOL.md 3.2): one per value (objects, arrays,
 * scalars, the root included) plus one per UTF-16 unit of each text field. Receivers refuse a creation
 * over `maxOpsPerChange`, since they build it as one change; a writer sends a larger insert as
 * Automerge changes instead. Infinity when the content breaks another limit.
 *
 * @example
 * if (creationOps(create) > MAX_OPS_PER_CHANGE) writeAsChanges();
 */
export function creationOps(c: Creation, limits: ContentLimits = DEFAULT_CONTENT_LIMITS): number {
  const count = { values: 0, textUnits: 0 };
  if (checkContent(c.json, limits, new Set(c.text), count)) return Infinity;
  return count.values + count.textUnits;
}
