import type { DatabaseCore } from "../../src/database.ts";

/** What an honest replica says it refused or noticed. */
export interface HostileReport {
  /**
   * `quarantine`: a commit refused alone (poison: too deep, too large, reserved keys, ...).
   * `equivocation`: two different commits for one (device, seq). `snapshot`: a forged snapshot.
   */
  kind: "quarantine" | "equivocation" | "snapshot";
  /** The commit id (`space.device.seq`) when the report names one. */
  commit?: string;
  device?: string;
  seq?: number;
  /** The error code, when the report carries one. */
  code?: string;
  /** Where it was read: the quarantine table, `db.integrity`, or the errors the status reported. */
  from: "_quarantine" | "integrity" | "errors";
}

/** One error as `db.status.lastError` showed it. */
export interface SeenError {
  code: string;
  message: string;
}

/** What the fuzzer's hostile parts use of a database (any schema). */
export type HostileDb = Pick<DatabaseCore, "replica" | "status" | "vector" | "importBundle">;
type Loose = Record<string, unknown>;

const COMMIT_ID = /\b([0-9a-f]{32})\.([0-9a-f]{32})\.(\d+)\b/;

/**
 * Records every distinct `lastError` a database's status shows while the fuzzer runs: the errors the
 * sync engine reports through its existing hook, appended to `errors` (one list may span restarts).
 * Returns the list (filled live) and an unsubscribe.
 */
export function watchErrors(db: HostileDb, errors: SeenError[] = []): { errors: SeenError[]; stop(): void } {
  let last: unknown;
  const sub = db.status.subscribe((s) => {
    if (!s.lastError || s.lastError === last) return;
    last = s.lastError;
    errors.push({ code: s.lastError.code, message: s.lastError.message });
  });
  return { errors, stop: () => sub.unsubscribe() };
}

/**
 * The adapter between the fuzzer's hostile invariant and the replica's reporting API: everything one
 * honest replica reports about hostile input, read from
 * 1. the `_quarantine` table (one row per commit refused alone, with its reason), when the replica has it;
 * 2. `db.integrity` (equivocations, forged snapshots), when the database has it: a value, a function,
 *    or a value store with `get()`, holding a list or an object with a list under `entries`/`reports`;
 * 3. otherwise, the errors its status reported (`watchErrors`): one naming a snapshot is a snapshot
 *    report, one naming an equivocation (or a twin, a forgery) an equivocation report, any other that
 *    names a commit a quarantine report of that commit.
 * The field names read are the plain ones (`commit`/`id`, `device`, `seq`, `code`/`reason`, `kind`);
 * pointing this at the final API is a matter of these few lines.
 */
export async function readHostileReports(
  db: HostileDb,
  errors: readonly SeenError[],
): Promise<HostileReport[]> {
  const out: HostileReport[] = [];
  const dexie = db.replica.dexie;
  const hasQuarantine = dexie.tables.some((t) => t.name === "_quarantine");
  if (hasQuarantine) {
    for (const row of (await dexie.table("_quarantine").toArray()) as Loose[])
      out.push({
        ...identify(row),
        kind: "quarantine",
        code: text(row.code ?? row.reason),
        from: "_quarantine",
      });
  }
  const integrity = await readIntegrity(db);
  for (const entry of integrity) {
    const kind = text(entry.kind ?? entry.type) ?? "";
    out.push({
      ...identify(entry),
      kind: /snapshot/i.test(kind)
        ? "snapshot"
        : /quarantin|poison/i.test(kind)
          ? "quarantine"
          : "equivocation",
      code: text(entry.code),
      from: "integrity",
    });
  }
  // A snapshot that opens with the space's snapshot key (so no damage on the way: that fails to open)
  // yet disagrees with its own sealed log is refused whole before anything is imported, and reported
  // once as a typed `SnapshotError` (snapshot-exchange.ts), not in `db.integrity`: that is its report.
  // `db.integrity` lists findings since the database was opened; a replica restarted since reported its
  // earlier ones as `IntegrityError`s, which the error list (spanning restarts) still holds.
  for (const e of errors) {
    if (e.code === "SnapshotError" && /^The snapshot's /.test(e.message))
      out.push({ kind: "snapshot", code: e.code, from: "errors" });
    if (e.code !== "IntegrityError") continue;
    const twin = /commits? (\d+) of device ([0-9a-f]{32})/.exec(e.message);
    if (/^The snapshot /.test(e.message)) out.push({ kind: "snapshot", code: e.code, from: "errors" });
    else if (twin)
      out.push({ kind: "equivocation", device: twin[2], seq: Number(twin[1]), code: e.code, from: "errors" });
  }
  if (!hasQuarantine && integrity.length === 0) {
    for (const e of errors) {
      const m = COMMIT_ID.exec(e.message);
      const said = `${e.code} ${e.message}`;
      const kind = /snapshot/i.test(said)
        ? "snapshot"
        : /equivocat|twin|forged/i.test(said)
          ? "equivocation"
          : "quarantine";
      if (m || kind !== "quarantine") {
        const id = m ? { commit: m[0], device: m[2], seq: Number(m[3]) } : {};
        out.push({ kind, ...id, code: e.code, from: "errors" });
      }
    }
  }
  return out;
}

async function readIntegrity(db: HostileDb): Promise<Loose[]> {
  let v: unknown = (db as unknown as Loose).integrity;
  if (v === undefined) return [];
  if (typeof v === "function") v = await (v as () => unknown).call(db);
  else if (v && typeof (v as { get?: unknown }).get === "function") v = (v as { get(): unknown }).get();
  v = await v;
  if (Array.isArray(v)) return v as Loose[];
  if (v && typeof v === "object") {
    const list = (v as Loose).entries ?? (v as Loose).reports ?? (v as Loose).items;
    if (Array.isArray(list)) return list as Loose[];
  }
  return [];
}

/** Commit id, device and seq from whatever a report row names. */
function identify(row: Loose): Pick<HostileReport, "commit" | "device" | "seq"> {
  const id = text(row.commit ?? row.commitId ?? row.id);
  const m = id ? COMMIT_ID.exec(id) : null;
  const device = text(row.device) ?? m?.[2];
  const seq = typeof row.seq === "number" ? row.seq : m ? Number(m[3]) : undefined;
  return {
    ...(id ? { commit: id } : {}),
    ...(device ? { device } : {}),
    ...(seq !== undefined ? { seq } : {}),
  };
}

function text(v: unknown): string | undefined {
  return typeof v === "string" ? v : undefined;
}

/**
 * Whether `reports` covers a hostile input: a commit (by id, or by device and seq) of the given kind, or
 * for a forged snapshot any snapshot report.
 */
export function reported(
  reports: readonly HostileReport[],
  want: { kind: HostileReport["kind"]; commit?: string; device?: string; seq?: number },
): boolean {
  return reports.some(
    (r) =>
      r.kind === want.kind &&
      (want.kind === "snapshot" ||
        (want.commit !== undefined && r.commit === want.commit) ||
        (want.device !== undefined &&
          r.device === want.device &&
          (want.seq === undefined || r.seq === want.seq))),
  );
}
