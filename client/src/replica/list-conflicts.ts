import type { Dexie } from "dexie";
import type { CommitId, DeviceId, RecordId } from "../types.ts";
import { changeAuthor } from "./change-author.ts";
import { peopleOf } from "./commit-log.ts";
import type { StoredCommit } from "./commit.ts";
import { CONFLICTED_FIELD, CONFLICTS_FIELD, splitOp, type RowConflicts } from "./conflict-values.ts";
import { creationActor } from "./creation.ts";
import type { Row } from "./materialize.ts";
import type { Replica } from "./replica.ts";
import type { MemberRow, SpaceRow } from "./stored-rows.ts";

/** One of the concurrent values of a conflicted field, with who wrote it and when. */
export interface ConflictCandidate {
  readonly value: unknown;
  /** The Automerge operation that wrote it (`counter@actor`), the same on every replica. */
  readonly op: string;
  /** The commit that wrote it, and its author: the device that signed it (the commit's `device`). */
  readonly commit?: CommitId;
  readonly device?: DeviceId;
  /** The person the space's membership log gives that device, when it has one. */
  readonly person?: { readonly id: string; readonly name: string };
  /** The author's claimed wall-clock time of the commit (ms since 1970): for people, not for ordering. */
  readonly at?: number;
}

/** A conflicted inbox field: what `db.conflicts()` lists. */
export interface Conflict {
  readonly collection: string;
  readonly id: RecordId;
  /** The field path declared `conflicts: "inbox"`. */
  readonly field: string;
  /** Every concurrent value (at most `MAX_CONFLICT_VALUES`), latest operation first. */
  readonly values: readonly ConflictCandidate[];
  /** Concurrent values left out of `values` beyond the cap (0 unless a writer flooded the field). */
  readonly omitted: number;
}

/** Which conflicts `db.conflicts()` lists. */
export interface ConflictsOptions {
  /** Only these collections (default: every collection with inbox fields). */
  readonly collections?: readonly string[];
}

/** Where one Automerge change came from: its actor's operations from `startOp` on, and its commit. */
interface ChangeOrigin {
  readonly actor: string;
  readonly startOp: number;
  readonly commit: StoredCommit;
}

/**
 * The conflicted inbox fields of this replica, ordered by collection, record id and field (the same
 * order on every replica). Reads only conflicted rows (the `$conflicted` index holds no others), then
 * each such record's commits, to name who wrote each value: the commit whose change holds the value's
 * operation. Awaits only Dexie promises, one after the other, so a live query (Dexie's `liveQuery`)
 * observes every read.
 *
 * @example
 * const list = await listConflicts(replica, { collections: ["patients"] });
 */
export async function listConflicts(replica: Replica, options: ConflictsOptions = {}): Promise<Conflict[]> {
  replica.assertOpen();
  const { dexie } = replica;
  const names = [...replica.specs.values()]
    .filter((s) => s.inbox.size > 0 && (!options.collections || options.collections.includes(s.name)))
    .map((s) => s.name)
    .sort();
  // First the conflicted rows and their commits, then the spaces' people once for all of them.
  const found: { collection: string; row: Row; conflicts: RowConflicts; commits: StoredCommit[] }[] = [];
  for (const collection of names) {
    const rows = (
      await dexie.table<Row, string>(collection).where(CONFLICTED_FIELD).equals(1).toArray()
    ).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    for (const row of rows) {
      const conflicts = row[CONFLICTS_FIELD] as RowConflicts | undefined;
      if (!conflicts) continue;
      const commits = await dexie.table<StoredCommit>("_commits").where("records").equals(row.id).toArray();
      found.push({ collection, row, conflicts, commits });
    }
  }
  const people = await peopleOfSpaces(dexie, [
    ...new Set(found.flatMap((f) => f.commits.map((c) => c.space))),
  ]);
  const out: Conflict[] = [];
  for (const { collection, row, conflicts, commits } of found) {
    const attribute = attributor(row.id, commits, people);
    for (const field of Object.keys(conflicts).sort()) {
      const c = conflicts[field]!;
      out.push({
        collection,
        id: row.id as RecordId,
        field,
        values: c.values.map((v) => ({ value: v.value, op: v.op, ...attribute(v.op) })),
        omitted: c.omitted,
      });
    }
  }
  return out;
}

/** `space|device` -> person, for some spaces (Dexie reads only, one after the other). */
async function peopleOfSpaces(dexie: Dexie, spaces: readonly string[]): Promise<People> {
  if (spaces.length === 0) return new Map();
  const spaceRows = await dexie.table<SpaceRow, string>("_spaces").bulkGet([...spaces]);
  const memberRows = await dexie
    .table<MemberRow>("_members")
    .where("space")
    .anyOf([...spaces])
    .toArray();
  return peopleOf(spaceRows, memberRows);
}

type People = ReadonlyMap<string, { id: string; name: string }>;

/**
 * Maps an operation id to the commit (device, person, time) whose change made it: among the record's
 * changes by the operation's actor, the one with the greatest start at or before the operation's
 * counter (an actor's changes number their operations in increasing runs). A record's creation is
 * its creation actor's first change.
 */
function attributor(
  id: string,
  commits: readonly StoredCommit[],
  people: People,
): (op: string) => Omit<ConflictCandidate, "value" | "op"> {
  const origins: ChangeOrigin[] = [];
  for (const commit of commits) {
    for (const rc of commit.changes) {
      if (rc.record !== id) continue;
      if (rc.create) origins.push({ actor: creationActor(id), startOp: 1, commit });
      for (const bin of rc.changes) origins.push({ ...changeAuthor(bin as Uint8Array), commit });
    }
  }
  return (op) => {
    const [counter, actor] = splitOp(op);
    let best: ChangeOrigin | undefined;
    for (const o of origins) {
      if (o.actor !== actor || o.startOp > counter) continue;
      if (!best || o.startOp > best.startOp) best = o;
    }
    if (!best) return {};
    const c = best.commit;
    const person = people.get(`${c.space}|${c.device}`);
    return { commit: c.id, device: c.device, at: c.at, ...(person && { person }) };
  };
}
