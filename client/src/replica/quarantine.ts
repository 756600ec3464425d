import { CommitQuarantined } from "../errors.ts";
import type { Commit } from "./commit.ts";
import type { QuarantineRow } from "./stored-rows.ts";
import { CommitRefusal } from "./validate-commit.ts";

/** What `applyRemoteCommits` keeps of a commit it quarantines: no content, only why and what it touched. */
export interface Poisoned extends Commit {
  readonly poison: { readonly reason: string; readonly message: string };
  readonly meta: { records: string[]; creations: string[]; checksums: string[] };
}

/** Most records of a refused commit remembered for its dependents (a valid commit holds at most 10,000). */
const MAX_META = 10_000;

/** True if `c` is a quarantined commit's stand-in. */
export function isPoisoned(c: Commit): c is Poisoned {
  return (c as Partial<Poisoned>).poison !== undefined;
}

/**
 * The stand-in of a refused commit: its routing fields, why, and what its dependents need to be found
 * (records it touched and created, its Automerge changes' checksums), without its content, so parking
 * or quarantining it never stores the bytes that were refused.
 */
export function poisoned(c: Commit, reason: string, message: string): Poisoned {
  if (isPoisoned(c)) return c;
  const meta = metaOf(c);
  return {
    id: c.id,
    space: c.space,
    device: c.device,
    seq: c.seq,
    at: 0,
    changes: [],
    poison: { reason, message },
    meta,
  };
}

/** The reason and message of an error thrown by validation or by applying. */
export function refusalOf(e: unknown): { reason: string; message: string } {
  if (e instanceof CommitRefusal) return { reason: e.reason, message: e.message };
  return { reason: "malformed", message: e instanceof Error ? e.message : String(e) };
}

/** The quarantine row of a stand-in, and the error reported for it (once, when it is quarantined). */
export function quarantineEntry(
  p: Poisoned,
  from: string,
  now: number,
): { row: QuarantineRow; error: CommitQuarantined } {
  const row: QuarantineRow = {
    id: p.id,
    space: p.space,
    device: p.device,
    seq: p.seq,
    reason: p.poison.reason,
    message: p.poison.message,
    at: now,
    from,
    ...p.meta,
  };
  const error = new CommitQuarantined(
    p.poison.reason,
    p.id,
    `Commit ${p.seq} of device ${p.device} in space ${p.space} (from ${from}) was quarantined and not applied: ${p.poison.message}`,
  );
  return { row, error };
}

/** First 4 bytes of an Automerge change's hash as its chunk header states them (bytes 4-7), in hex. */
export function changeChecksum(ch: Uint8Array): string | null {
  if (!(ch instanceof Uint8Array) || ch.length < 8) return null;
  let s = "";
  for (let i = 4; i < 8; i++) s += ch[i]!.toString(16).padStart(2, "0");
  return s;
}

function metaOf(c: Commit): Poisoned["meta"] {
  const meta: Poisoned["meta"] = { records: [], creations: [], checksums: [] };
  if (!Array.isArray(c.changes)) return meta;
  for (const rc of c.changes.slice(0, MAX_META)) {
    if (rc === null || typeof rc !== "object" || typeof rc.record !== "string" || rc.record.length > 64)
      continue;
    meta.records.push(rc.record);
    if (rc.create !== undefined) meta.creations.push(rc.record);
    if (!Array.isArray(rc.changes)) continue;
    for (const ch of rc.changes.slice(0, MAX_META)) {
      const sum = changeChecksum(ch);
      if (sum) meta.checksums.push(sum);
    }
  }
  return meta;
}

/**
 * True if a storage failure comes from what was being written (a value IndexedDB cannot clone, an
 * invalid key, a JavaScript error while preparing it), not from the storage itself (quota, I/O, a
 * closed database): only then is it worth finding the commit that caused it.
 */
export function isContentFailure(e: unknown): boolean {
  const seen: unknown[] = [e];
  for (let i = 0; i < seen.length && i < 20; i++) {
    const err = seen[i] as { name?: string; inner?: unknown; cause?: unknown; failures?: unknown[] } | null;
    if (!err || typeof err !== "object") continue;
    if (err.name && CONTENT_FAILURES.has(err.name)) return true;
    if (err.inner) seen.push(err.inner);
    if (err.cause) seen.push(err.cause);
    if (Array.isArray(err.failures)) seen.push(...err.failures.slice(0, 5));
  }
  return false;
}

const CONTENT_FAILURES = new Set([
  "DataCloneError",
  "DataError",
  "TypeError",
  "RangeError",
  "SyntaxError",
  "RuntimeError",
  "ValidationError",
]);
