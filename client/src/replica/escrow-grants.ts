import { grantAsked, type EscrowHost } from "./escrow-ops.ts";
import { ESCROW_FIELD, type EscrowSummary } from "./escrow.ts";

/**
 * Answers other devices' requests for rights automatically: after every commit (received or made here)
 * that touches a record with bounded counters, this device grants what it can of the unmet requests
 * on that record (`grantAsked`), one record at a time; and once at start, for the requests already
 * stored (received before this device closed or crashed). A device that may not write (a reader, a
 * closed database) grants nothing. Returns a function that stops it; it also stops when the database closes.
 *
 * @example
 * const stop = startEscrowGrants(db);
 */
export function startEscrowGrants(host: EscrowHost): () => void {
  const { replica } = host;
  const bounded = new Set([...replica.specs].filter(([, s]) => s.bounded).map(([name]) => name));
  if (bounded.size === 0) return () => {};
  const queued = new Map<string, string>(); // record id -> collection
  let running = false;
  let stopped = false;
  const run = async () => {
    running = true;
    try {
      while (queued.size > 0 && !stopped) {
        const [id, collection] = queued.entries().next().value as [string, string];
        queued.delete(id);
        try {
          await grantAsked(host, collection, id);
        } catch {
          // Not permitted here, a record erased meanwhile, the database closing: the next commit that
          // touches the record asks again.
        }
      }
    } finally {
      running = false;
    }
  };
  const kick = () => {
    if (!running && queued.size > 0 && !stopped) void run();
  };
  const off = replica.onCommits((commits) => {
    for (const c of commits)
      for (const rc of c.changes) if (bounded.has(rc.collection)) queued.set(rc.record, rc.collection);
    kick();
  });
  // Requests stored before this start: one read of each collection with bounded counters (small ones,
  // as a rule: a stock per item), for rows where another device asks and this one holds rights.
  const sweep = async () => {
    for (const collection of bounded) {
      await replica.dexie.table(collection).each((row: Record<string, unknown>) => {
        const escrow = row[ESCROW_FIELD] as EscrowSummary | undefined;
        const due = Object.values(escrow ?? {}).some(
          (f) =>
            (f.rights[replica.device] ?? 0) > 0 && Object.keys(f.wants).some((d) => d !== replica.device),
        );
        if (due) queued.set(row.id as string, collection);
      });
    }
    kick();
  };
  setTimeout(() => void sweep().catch(() => undefined), 0);
  const stop = () => {
    stopped = true;
    off();
  };
  replica.onClose(stop);
  return stop;
}
