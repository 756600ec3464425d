import * as A from "@automerge/automerge";
import type { Dexie } from "dexie";
import { NotFound, ValidationError } from "../errors.ts";
import type { CommitId } from "../types.ts";
import type { RecordChange, StoredCommit } from "./commit.ts";
import type { CollectionSpec } from "./collection-spec.ts";
import { buildFromCreation } from "./creation.ts";

/**
 * The Automerge change message a restore writes on its changes: `shoal/restore <commit id>` (the commit
 * whose version it brings back) or `shoal/restore @<ms>` (a space restored to a time). It travels inside
 * the signed, sealed change, so every replica's `history` can say an entry was a restore. It is the
 * author's claim, like `at`.
 */
export const RESTORE_MESSAGE_PREFIX = "shoal/restore ";

/** Where a restore goes: the version of the record right after this commit, or as of this time. */
export type RestorePoint = { readonly commit: CommitId } | { readonly time: number };

/**
 * The Automerge heads of a record's version that one commit's changes leave (their last change; the
 * creation change for a lazy insert). Viewing the document at them gives the record as it was right
 * after that commit, as its author saw it (its causal past), which is what `readAt` shows.
 */
export function headsOfChange(id: string, rc: RecordChange): string[] {
  if (rc.changes.length > 0) return [A.decodeChange(rc.changes[rc.changes.length - 1]!).hash];
  if (rc.create) return A.getHeads(buildFromCreation(id, rc.create, "00"));
  return [];
}

/** The commit `commit` and what it did to record `id`, or `NotFound`. */
export async function changeOf(
  dexie: Dexie,
  id: string,
  commit: CommitId,
): Promise<{ commit: StoredCommit; change: RecordChange }> {
  const c = await dexie.table<StoredCommit>("_commits").where("id").equals(commit).first();
  const rc = c?.changes.find((x) => x.record === id);
  if (!c || !rc) throw new NotFound(`Commit ${commit} did not change record ${id}.`);
  return { commit: c, change: rc };
}

/** Per record of a space changed after a point: the heads of its version at the point (none: absent). */
export interface SpaceRestorePlan {
  readonly records: { id: string; collection: string; heads: string[] }[];
}

/**
 * Which records of `space` changed after `point`, and the heads of each one's version at the point.
 * The point splits this replica's log of the space: for a commit, every commit up to it in this
 * replica's causal order (`pos`: what this replica held when that commit was applied, never a commit
 * after one it depends on); for a time, every commit whose claimed time `at` is at or before it (plus
 * what those build on, which Automerge includes when viewing at their heads). A record with no change
 * at or before the point did not exist then: its version at the point is "absent" (empty heads).
 */
export async function planSpaceRestore(
  dexie: Dexie,
  space: string,
  point: RestorePoint,
): Promise<SpaceRestorePlan> {
  const commits = await dexie
    .table<StoredCommit>("_commits")
    .where("[space+device+seq]")
    .between([space, "", 0], [space, "\uffff", Number.MAX_SAFE_INTEGER], true, true)
    .toArray();
  commits.sort((a, b) => a.pos! - b.pos!);
  let before: (c: StoredCommit) => boolean;
  if ("commit" in point) {
    const at = commits.find((c) => c.id === point.commit);
    if (!at) throw new NotFound(`No commit ${point.commit} in space ${space} on this device.`);
    before = (c) => c.pos! <= at.pos!;
  } else {
    if (!Number.isFinite(point.time))
      throw new ValidationError("A restore time must be a finite number of ms.");
    before = (c) => c.at <= point.time;
  }
  const per = new Map<string, { collection: string; heads: string[]; changedAfter: boolean }>();
  for (const c of commits) {
    const inPast = before(c);
    for (const rc of c.changes) {
      let e = per.get(rc.record);
      if (!e) per.set(rc.record, (e = { collection: rc.collection, heads: [], changedAfter: false }));
      if (inPast) e.heads.push(...headsOfChange(rc.record, rc));
      else e.changedAfter = true;
    }
  }
  const records: SpaceRestorePlan["records"] = [];
  for (const [id, e] of per)
    if (e.changedAfter) records.push({ id, collection: e.collection, heads: [...new Set(e.heads)].sort() });
  return { records };
}

/**
 * Changes `doc` (inside an Automerge change) so that its content equals `target`'s, as edits that merge
 * with concurrent ones: a text field is diffed character by character (`updateText`), a counter is
 * incremented by the difference (a concurrent increment still adds up), a map is reconciled key by key,
 * and other values (lists, strings, numbers, dates, bytes) are set only where they differ. Shoal's own
 * root markers (`$...`) are left alone. Returns nothing; the caller reads the change's patches.
 */
export function reconcileTo(
  root: Record<string, unknown>,
  target: Record<string, unknown>,
  spec: CollectionSpec,
): void {
  reconcileMap(root, target, [], root, spec);
}

function reconcileMap(
  cur: Record<string, unknown>,
  tgt: Record<string, unknown>,
  path: (string | number)[],
  root: Record<string, unknown>,
  spec: CollectionSpec,
): void {
  const top = path.length === 0;
  const skip = (k: string) => top && (k.startsWith("$") || k === "id");
  for (const k of Object.keys(cur)) if (!skip(k) && !(k in tgt)) delete cur[k];
  for (const k of Object.keys(tgt)) if (!skip(k)) reconcileKey(cur, k, tgt[k], [...path, k], root, spec);
}

function reconcileKey(
  parent: Record<string, unknown>,
  key: string,
  tv: unknown,
  path: (string | number)[],
  root: Record<string, unknown>,
  spec: CollectionSpec,
): void {
  const cv = parent[key];
  if (typeof tv === "string") {
    // Collaborative text in the target version.
    if (typeof cv === "string") {
      if (cv !== tv) A.updateText(root as A.Doc<unknown>, path as A.Prop[], tv);
    } else parent[key] = tv;
    return;
  }
  if (tv instanceof A.Counter) {
    if (cv instanceof A.Counter) {
      const by = tv.value - cv.value;
      if (by !== 0) cv.increment(by);
    } else parent[key] = new A.Counter(tv.value);
    return;
  }
  if (isMap(tv)) {
    if (isMap(cv)) reconcileMap(cv, tv, path, root, spec);
    else parent[key] = copyOf(tv);
    return;
  }
  if (sameValue(cv, tv)) return;
  parent[key] = copyOf(tv);
}

function isMap(v: unknown): v is Record<string, unknown> {
  return (
    v !== null &&
    typeof v === "object" &&
    !Array.isArray(v) &&
    !(v instanceof A.ImmutableString) &&
    !(v instanceof A.Counter) &&
    !(v instanceof Date) &&
    !(v instanceof Uint8Array)
  );
}

/** A fresh value to store, with the same Automerge types as `v` (text, immutable string, counter). */
function copyOf(v: unknown): unknown {
  if (v === null || typeof v !== "object") return v;
  if (v instanceof A.ImmutableString) return new A.ImmutableString(v.val);
  if (v instanceof A.Counter) return new A.Counter(v.value);
  if (v instanceof Date) return new Date(v.getTime());
  if (v instanceof Uint8Array) return new Uint8Array(v);
  if (Array.isArray(v)) return v.map(copyOf);
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) out[k] = copyOf(x);
  return out;
}

/** Whether two stored values are equal, with the same Automerge types. */
function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (a === null || b === null || typeof a !== "object" || typeof b !== "object") return false;
  if (a instanceof A.ImmutableString || b instanceof A.ImmutableString)
    return a instanceof A.ImmutableString && b instanceof A.ImmutableString && a.val === b.val;
  if (a instanceof A.Counter || b instanceof A.Counter)
    return a instanceof A.Counter && b instanceof A.Counter && a.value === b.value;
  if (a instanceof Date || b instanceof Date)
    return a instanceof Date && b instanceof Date && a.getTime() === b.getTime();
  if (a instanceof Uint8Array || b instanceof Uint8Array)
    return (
      a instanceof Uint8Array &&
      b instanceof Uint8Array &&
      a.length === b.length &&
      a.every((x, i) => x === b[i])
    );
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  // Index by index: inside a change, `Object.keys` of an Automerge list is empty.
  if (Array.isArray(a) && Array.isArray(b))
    return a.length === b.length && a.every((x, i) => sameValue(x, b[i]));
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  return ka.every(
    (k) =>
      k in (b as object) && sameValue((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]),
  );
}

/** The commit a restore message names, if `message` is one (`undefined` otherwise). */
export function restoredFromMessage(message: string | null | undefined): string | undefined {
  return message?.startsWith(RESTORE_MESSAGE_PREFIX)
    ? message.slice(RESTORE_MESSAGE_PREFIX.length)
    : undefined;
}
