import * as A from "@automerge/automerge";
import type { Dexie } from "dexie";
import { NotFound } from "../errors.ts";
import type { CommitId, DeviceId, VersionVector } from "../types.ts";
import { toCommit, type Commit, type StoredCommit } from "./commit.ts";
import { stateOf } from "../spaces/membership-log.ts";
import { materialize, type Row } from "./materialize.ts";
import { buildFromCreation, creationRow } from "./creation.ts";
import { restoredFromMessage } from "./restore.ts";
import type { DocRow, MemberRow, SpaceRow, VectorRow } from "./stored-rows.ts";

/** One entry of a record's history: a commit that changed it. */
export interface HistoryEntry {
  readonly commit: CommitId;
  readonly device: DeviceId;
  readonly seq: number;
  /** The author's wall-clock time (ms since 1970): for people, not for ordering merges. */
  readonly at: number;
  readonly op: "insert" | "update" | "delete";
  /** Top-level fields changed. */
  readonly paths: readonly string[];
  /**
   * Whether `device` is proven to have made this commit: it was made on this device, or it arrived
   * signed by that device's key (checked on arrival, from the relay, a peer, a tab, a file or a
   * snapshot; its signed bytes are kept). False only for a commit handed to `db.applyCommits` by the
   * app itself, whose author nothing proves: show it as unverified.
   */
  readonly verified: boolean;
  /**
   * Who the space's membership log says the device belongs to at present or belonged to (a removed
   * device keeps its person): their id and display name. Absent in an open space, or for a device the
   * log does not know.
   */
  readonly person?: { readonly id: string; readonly name: string };
  /**
   * For a restore (`restore(id, commit)` or `db.restore(space, { to })`): the commit whose version it
   * brought back, or `@<ms>` for a restore to a time. The author's claim, carried in the signed change.
   */
  readonly restoredFrom?: string;
}

/**
 * The `_vectors` rows of some spaces (all without `spaces`). One index range per space (`equals`, read
 * whole), not `anyOf`: that walks a cursor, and over one space's thousands of devices (all the same
 * index key) a cursor step can cost as much as the whole range (fake-indexeddb), which made every
 * vector read of a 10,000-device space quadratic.
 */
async function vectorRows(dexie: Dexie, spaces?: readonly string[]): Promise<VectorRow[]> {
  const t = dexie.table<VectorRow>("_vectors");
  if (!spaces) return t.toArray();
  const per = await Promise.all([...new Set(spaces)].map((s) => t.where("space").equals(s).toArray()));
  return per.flat();
}

/** This replica's version vector: per space, per device, the highest contiguous sequence held. */
export async function readVector(dexie: Dexie, spaces?: readonly string[]): Promise<VersionVector> {
  const rows = await vectorRows(dexie, spaces);
  const v: VersionVector = {};
  for (const r of rows) (v[r.space] ??= {})[r.device] = r.seq;
  return v;
}

/**
 * The commits this replica holds that a peer at `since` lacks, in this replica's causal order (the order
 * they were appended, which never puts a commit before one it depends on). Cost is proportional to what
 * is missing: one index range per (space, device), never a scan of the log.
 */
export async function exportCommits(
  dexie: Dexie,
  since: VersionVector,
  options: { spaces?: readonly string[]; limit?: number } = {},
): Promise<Commit[]> {
  const commits = dexie.table<StoredCommit>("_commits");
  // One read transaction with the ranges asked for together: a peer missing thousands of devices
  // costs thousands of ranges, and one transaction each (awaited in turn) cost ten times as much.
  const parts = await dexie.transaction("r", [commits, dexie.table("_vectors")], async () => {
    const rows = await vectorRows(dexie, options.spaces);
    return Promise.all(
      rows.flatMap((v) => {
        const from = (since[v.space]?.[v.device] ?? 0) + 1;
        if (from > v.seq) return [];
        return [
          commits
            .where("[space+device+seq]")
            .between([v.space, v.device, from], [v.space, v.device, v.seq], true, true)
            .toArray(),
        ];
      }),
    );
  });
  const out = parts.flat();
  out.sort((a, b) => a.pos! - b.pos!);
  return (options.limit !== undefined ? out.slice(0, options.limit) : out).map(toCommit);
}

/** The commits that changed a record, oldest first (this replica's causal order). */
export async function history(dexie: Dexie, id: string, self: DeviceId): Promise<HistoryEntry[]> {
  const rows = await dexie.table<StoredCommit>("_commits").where("records").equals(id).toArray();
  rows.sort((a, b) => a.pos! - b.pos!);
  // A received commit is kept sealed (with its signature) once it was verified; one without its sealed
  // bytes came in as plaintext through `applyCommits`.
  const sealed = await dexie.table("_sealed").bulkGet(rows.map((c) => [c.space, c.device, c.seq]));
  // Dexie promises only, awaited one by one (see `peopleOf`).
  const spaces = [...new Set(rows.map((c) => c.space as string))];
  const spaceRows = await dexie.table<SpaceRow, string>("_spaces").bulkGet(spaces);
  const memberRows =
    spaces.length === 0
      ? []
      : await dexie.table<MemberRow>("_members").where("space").anyOf(spaces).toArray();
  const people = peopleOf(spaceRows, memberRows);
  return rows.map((c, i) => {
    const rc = c.changes.find((x) => x.record === id)!;
    const verified = c.device === self || sealed[i] !== undefined;
    const person = people.get(`${c.space}|${c.device}`);
    const restoredFrom = restoredFromChange(rc.changes[0]);
    return {
      commit: c.id,
      device: c.device,
      seq: c.seq,
      at: c.at,
      op: rc.op,
      paths: rc.paths,
      verified,
      ...(person && { person }),
      ...(restoredFrom !== undefined && { restoredFrom }),
    };
  });
}

/** The `restoredFrom` of a restore's first Automerge change (its message), if it is one. */
function restoredFromChange(change: Uint8Array | undefined): string | undefined {
  if (!change) return undefined;
  try {
    return restoredFromMessage(A.decodeChange(change).message);
  } catch {
    return undefined;
  }
}

/**
 * `space|device` -> its person (id and name), for the spaces that have a membership log, from rows
 * already read. Synchronous on purpose: inside a live query (Dexie's), awaiting anything but a Dexie
 * promise (a native async function, `Promise.all`, WebCrypto) makes the query stop observing the reads
 * its querier makes afterwards in browsers; the names were opened when the log arrived
 * (`absorbMembership`).
 */
export function peopleOf(
  spaceRows: readonly (SpaceRow | undefined)[],
  memberRows: readonly MemberRow[],
): Map<string, { id: string; name: string }> {
  const out = new Map<string, { id: string; name: string }>();
  for (const row of spaceRows) {
    if (!row) continue;
    const state = stateOf(
      row,
      memberRows.filter((r) => r.space === row.id),
    );
    if (!state) continue;
    for (const [device, person] of state.everOwner)
      out.set(`${row.id}|${device}`, { id: person, name: row.names?.[person] ?? "(unknown)" });
  }
  return out;
}

/**
 * A record as it was right after a commit: the document viewed at that commit's last change for the
 * record (Automerge keeps the whole history, so nothing extra is stored for this).
 */
export async function readAt(dexie: Dexie, id: string, commit: CommitId): Promise<Row> {
  const c = await dexie.table<StoredCommit>("_commits").where("id").equals(commit).first();
  const rc = c?.changes.find((x) => x.record === id);
  if (!c || !rc) throw new NotFound(`Commit ${commit} did not change record ${id}.`);
  const row = await dexie.table<DocRow, string>("_docs").get(id);
  if (!row) throw new NotFound(`No record ${id}.`);
  if (rc.create && rc.changes.length === 0) return creationRow(id, rc.create);
  const hash = A.decodeChange(rc.changes[rc.changes.length - 1]!).hash;
  const doc =
    row.create && row.bin.length === 0
      ? buildFromCreation(id, row.create, "0000000000000000")
      : A.load(row.bin);
  return materialize(id, A.view(doc, [hash]));
}
