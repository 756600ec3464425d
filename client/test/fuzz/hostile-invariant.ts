import { POISON_PREFIX } from "./hostile-commits.ts";
import type { Injected } from "./hostile-member.ts";
import { readHostileReports, reported, type HostileDb, type SeenError } from "./hostile-reports.ts";

/** An honest replica as the hostile invariant sees it. */
export interface HonestView {
  name: string;
  db: HostileDb;
  /** Every error its status showed during the run, across restarts. */
  errors: readonly SeenError[];
}

/** A hostile input, with the honest replicas that were open when it was injected. */
export interface InjectedAt extends Injected {
  /** Honest replicas open at injection time: each must report a poison commit the relay took. */
  witnesses: readonly string[];
}

/**
 * The hostile invariant, checked after the honest replicas converged: no honest replica shows a poison
 * row (item 1 and 2 content, or a forged snapshot's row); every poison commit the relay stored is
 * reported (quarantined) by every honest replica that was open then; the replica handed a forged twin
 * reports the equivocation (device, seq); and every honest replica that imported the forged snapshot
 * (stored its forged document) reports it. Returns what failed, one line each.
 */
export async function hostileFailures(
  honest: readonly HonestView[],
  injected: readonly InjectedAt[],
  forgedImportedBy: ReadonlySet<string>,
): Promise<string[]> {
  const failures: string[] = [];
  const reports = new Map(
    await Promise.all(honest.map(async (h) => [h.name, await readHostileReports(h.db, h.errors)] as const)),
  );
  for (const h of honest) {
    const rows = (await h.db.replica.dexie.table("patients").toArray()) as { id: string; name?: unknown }[];
    for (const row of rows) {
      if (typeof row.name === "string" && row.name.startsWith(POISON_PREFIX))
        failures.push(`${h.name} shows a hostile row: ${row.id} named "${row.name}"`);
    }
  }
  for (const i of injected) {
    if (
      (i.action === "deep" || i.action === "huge" || i.action === "creation-id" || i.action === "root-id") &&
      i.answer === "acked"
    ) {
      for (const name of i.witnesses) {
        if (!reports.has(name)) continue;
        if (
          !reported(reports.get(name)!, {
            kind: "quarantine",
            commit: i.commit,
            device: i.device,
            seq: i.seq,
          })
        )
          failures.push(`${name} did not report the hostile commit ${i.commit} (${i.action})`);
      }
    }
    if (i.action === "equivocation" && i.target && reports.has(i.target)) {
      if (!reported(reports.get(i.target)!, { kind: "equivocation", device: i.device, seq: i.seq }))
        failures.push(`${i.target} did not report the forged twin of ${i.device} seq ${i.seq} (${i.answer})`);
    }
  }
  for (const name of forgedImportedBy)
    if (reports.has(name) && !reported(reports.get(name)!, { kind: "snapshot" }))
      failures.push(`${name} imported the forged snapshot and did not report it`);
  return failures;
}
