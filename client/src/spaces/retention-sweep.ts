import { NotPermitted } from "../errors.ts";
import type { CollectionSpec } from "../replica/collection-spec.ts";
import type { RetentionRule } from "../replica/collection-types.ts";
import type { ErasedRow } from "../replica/erased.ts";
import type { Replica } from "../replica/replica.ts";
import { eraseRecord } from "./erase-record.ts";

const DAY = 86_400_000;

/** What one retention sweep did. */
export interface RetentionReport {
  /** The clock reading the sweep judged by (this device's clock, ms). */
  readonly now: number;
  /** Records past their retention that this device erased (a signed `erase` each). */
  readonly erased: readonly { collection: string; id: string }[];
  /** Records past their retention that this device may not erase (not an admin of their space). */
  readonly notPermitted: readonly { collection: string; id: string }[];
}

/**
 * Erases the records of every collection with a `retention` rule that are past it (issue 16 item 2).
 * Each is erased like `db.<collection>.erase(id)`: a signed, attributed operation of an admin, applied
 * by every device that receives it, so the outcome never depends on the other devices' clocks: one
 * device decides, by its own clock, and everyone applies that decision. Its clock may run ahead by up
 * to `graceDays` (default 1) without erasing early. A device that is not an admin of a record's space
 * skips it (listed in `notPermitted`): an admin's device erases it when it sweeps. Records whose date
 * does not parse are never erased.
 */
export async function sweepRetention(replica: Replica): Promise<RetentionReport> {
  replica.assertOpen();
  const now = replica.now();
  const erased: { collection: string; id: string }[] = [];
  const notPermitted: { collection: string; id: string }[] = [];
  for (const spec of replica.specs.values()) {
    if (!spec.retention) continue;
    for (const id of await expiredIds(replica, spec, spec.retention, now)) {
      try {
        await eraseRecord(replica, spec.name, id);
        erased.push({ collection: spec.name, id });
      } catch (e) {
        if (e instanceof NotPermitted) notPermitted.push({ collection: spec.name, id });
        else throw e;
      }
    }
  }
  return { now, erased, notPermitted };
}

/** The ids of `spec`'s records past `rule` at `now`, not erased yet. */
async function expiredIds(
  replica: Replica,
  spec: CollectionSpec,
  rule: RetentionRule,
  now: number,
): Promise<string[]> {
  const cutoff = cutoffOf(rule, now);
  if (!Number.isFinite(cutoff)) return [];
  const table = replica.dexie.table<Record<string, unknown>, string>(spec.name);
  // Dates as numbers, then as strings: IndexedDB orders every number before every string. The string
  // range ends a day late so that an offset like +05:00 is not cut off; each value is checked exactly.
  const [numbers, strings] = await Promise.all([
    table.where(rule.field).below(cutoff).toArray(),
    table
      .where(rule.field)
      .between("", new Date(cutoff + DAY).toISOString(), true, true)
      .toArray(),
  ]);
  const ids = [...numbers, ...strings]
    .filter((row) => {
      const v = row[rule.field];
      const at = typeof v === "number" ? v : typeof v === "string" ? Date.parse(v) : Number.NaN;
      return Number.isFinite(at) && at < cutoff;
    })
    .map((row) => row.id as string);
  const done = await replica.dexie.table<ErasedRow, string>("_erased").bulkGet(ids);
  return ids.filter((_, i) => !done[i]);
}

/**
 * The latest date a record may carry and be past `rule` at `now`: `now` less the grace, less the
 * duration in calendar units (UTC), so "10 years" means the same calendar day ten years on.
 */
export function cutoffOf(rule: RetentionRule, now: number): number {
  const d = new Date(now - (rule.graceDays ?? 1) * DAY);
  d.setUTCFullYear(d.getUTCFullYear() - (rule.years ?? 0));
  d.setUTCMonth(d.getUTCMonth() - (rule.months ?? 0));
  d.setUTCDate(d.getUTCDate() - (rule.days ?? 0));
  return d.getTime();
}
