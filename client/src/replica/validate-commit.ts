import { ValidationError } from "../errors.ts";
import { isId16, isRecordId } from "../ids.ts";
import type { Commit } from "./commit.ts";
import { commitId } from "./commit.ts";
import { recordProblem } from "./record-limits.ts";
import { MAX_KEYS_PER_OBJECT } from "../protocol/limits.ts";

const COLLECTION_RE = /^[A-Za-z][A-Za-z0-9_]*$/;
const PATH_RE = /^[^\u0000]{1,200}$/;
const OPS = new Set(["insert", "update", "delete"]);

/** Most record changes one commit may carry (bounds the work an untrusted peer can ask for). */
export const MAX_RECORDS_PER_COMMIT = 10_000;

/** A `ValidationError` of `validateCommit`, with a stable reason (`CommitQuarantined.reason`). */
export class CommitRefusal extends ValidationError {
  readonly reason: "malformed" | "limits" | "reserved";
  constructor(reason: CommitRefusal["reason"], message: string) {
    super(message);
    this.reason = reason;
  }
}

/**
 * True if a commit's routing fields (space, device, sequence, id) are well formed: then it has a
 * sequence slot, and a refusal of its content can be quarantined in that slot.
 */
export function hasRouting(c: Commit): boolean {
  return (
    c !== null &&
    typeof c === "object" &&
    isId16(c.space) &&
    isId16(c.device) &&
    Number.isSafeInteger(c.seq) &&
    c.seq >= 1 &&
    c.id === commitId(c.space, c.device, c.seq)
  );
}

/**
 * Checks a commit received from elsewhere, before any of it is applied or stored: ids well formed and
 * consistent, sequence a positive integer, every change a byte array, and every record within the
 * content limits (`recordProblem`). Throws `CommitRefusal` (a `ValidationError`).
 */
export function validateCommit(c: Commit): void {
  const bad = (why: string) => new CommitRefusal("malformed", `Malformed commit ${String(c?.id)}: ${why}.`);
  if (c === null || typeof c !== "object") throw bad("not an object");
  if (!isId16(c.space) || !isId16(c.device)) throw bad("bad space or device id");
  if (!Number.isSafeInteger(c.seq) || c.seq < 1) throw bad("bad sequence number");
  if (c.id !== commitId(c.space, c.device, c.seq)) throw bad("id does not match space, device and sequence");
  if (c.defect !== undefined)
    throw new CommitRefusal(c.defect.reason, `Commit ${c.id} cannot be read: ${c.defect.message}`);
  if (typeof c.at !== "number" || !Number.isFinite(c.at)) throw bad("bad time");
  // An empty list is a commit whose every change its author erased before sealing it (PROTOCOL.md 12):
  // it still takes its slot everywhere, as it does on its author (fuzz seed 5000, membership mode).
  if (!Array.isArray(c.changes) || c.changes.length > MAX_RECORDS_PER_COMMIT) {
    throw bad("bad list of changes");
  }
  const seen = new Set<string>();
  for (const rc of c.changes) {
    if (!isRecordId(rc.record)) throw bad("bad record id");
    if (seen.has(rc.record)) throw bad("a record appears twice");
    seen.add(rc.record);
    if (typeof rc.collection !== "string" || !COLLECTION_RE.test(rc.collection))
      throw bad("bad collection name");
    if (!OPS.has(rc.op)) throw bad("bad operation");
    if (!Array.isArray(rc.changes)) throw bad("no list of Automerge changes");
    if (rc.create !== undefined) {
      if (rc.op !== "insert") throw bad("a creation on an operation that is not an insert");
      const cr = rc.create;
      if (
        cr === null ||
        typeof cr !== "object" ||
        cr.json === null ||
        typeof cr.json !== "object" ||
        Array.isArray(cr.json)
      ) {
        throw bad("bad creation");
      }
      if (
        !Array.isArray(cr.text) ||
        !Array.isArray(cr.counters) ||
        [...cr.text, ...cr.counters].some((p: unknown) => typeof p !== "string")
      ) {
        throw bad("bad creation field kinds");
      }
    } else if (rc.changes.length === 0) throw bad("no Automerge changes");
    for (const ch of rc.changes) if (!(ch instanceof Uint8Array)) throw bad("a change is not bytes");
    if (
      !Array.isArray(rc.paths) ||
      rc.paths.length > MAX_KEYS_PER_OBJECT ||
      rc.paths.some((p: unknown) => typeof p !== "string" || !PATH_RE.test(p))
    ) {
      throw bad("bad paths");
    }
    const problem = recordProblem(rc);
    if (problem)
      throw new CommitRefusal(
        problem.reason,
        `Commit ${c.id} refused: record ${rc.record} has ${problem.message}.`,
      );
  }
}
