import * as A from "@automerge/automerge";
import { NotFound, ValidationError } from "../errors.ts";
import { checkContent } from "./content-check.ts";
import { creationOps, recordProblem } from "./record-limits.ts";
import { changeInParts } from "./change-in-parts.ts";
import { DEFAULT_CONTENT_LIMITS } from "../protocol/limits.ts";
import { uuidv7 } from "../ids.ts";
import type { RecordId, SpaceId } from "../types.ts";
import type { CollectionSpec } from "./collection-spec.ts";
import { DELETED_FIELD, isDeleted, materialize, type Row } from "./materialize.ts";
import { makeDraft, toAutomerge } from "./draft.ts";
import { buildFromCreation, creationOf, creationRow, type Creation } from "./creation.ts";
import type { PreparedCommit, PreparedEntry } from "./prepared.ts";
import type { Replica } from "./replica.ts";
import { pushTo } from "./group-by.ts";
import { assertSealable, type SizedChange } from "./sealed-size.ts";
import { reconcileTo } from "./restore.ts";
import { ESCROW_KEY, initialEscrow } from "./escrow.ts";

interface Working {
  id: RecordId;
  collection: string;
  space: SpaceId;
  /** Automerge heads of the document the changes build on; null for a record made here. */
  baseDocHeads: readonly string[] | null;
  /** Heads of the version the changes build on (`CREATION_HEADS` for an unbuilt creation). */
  baseHeads: readonly string[];
  /** Null while the record is a fresh insert kept as its creation (built only if edited here). */
  doc: A.Doc<unknown> | null;
  create?: Creation;
  op: "insert" | "update" | "delete";
  paths: Set<string>;
}

/** Where an insert goes: a space id or an object with one (as `createSpace` returns). */
export type SpaceRef = SpaceId | { readonly id: SpaceId };

/** Options of `insert`. */
export interface InsertOptions {
  /** The space the record belongs to (default: the database's private space). */
  space?: SpaceRef;
}

/**
 * The records a `transact` function changes, kept apart until the function returns: nothing reaches
 * IndexedDB or the shared document cache if it throws, and everything becomes one commit per space.
 * Reads inside see the transaction's own writes.
 */
export class Transaction {
  readonly #replica: Replica;
  readonly #working = new Map<string, Working>();
  readonly #knownSpaces: ReadonlySet<string>;

  constructor(replica: Replica, knownSpaces: ReadonlySet<string>) {
    this.#replica = replica;
    this.#knownSpaces = knownSpaces;
  }

  #spec(collection: string): CollectionSpec {
    const spec = this.#replica.specs.get(collection);
    if (!spec) throw new ValidationError(`Unknown collection "${collection}".`);
    return spec;
  }

  /** The inbox fields of a collection (see `materialize`). */
  #inbox(collection: string): ReadonlySet<string> | undefined {
    return this.#replica.specs.get(collection)?.inbox;
  }

  /** Automerge change options carrying this device's clock (seconds), which is metadata only. */
  #time(): { time: number } {
    return { time: Math.floor(this.#replica.now() / 1000) };
  }

  /** Creates a record and returns its new id. */
  insert(collection: string, value: Record<string, unknown>, options: InsertOptions = {}): RecordId {
    const spec = this.#spec(collection);
    if (value === null || typeof value !== "object" || Array.isArray(value)) {
      throw new ValidationError(`insert into "${collection}" takes a plain object.`);
    }
    const space =
      (typeof options.space === "object" ? options.space.id : options.space) ?? this.#replica.privateSpace;
    if (!this.#knownSpaces.has(space)) throw new ValidationError(`Unknown space ${space}.`);
    for (const k of Object.keys(value)) {
      if (k === "id" || k.startsWith("$")) throw new ValidationError(`Field "${k}" is reserved.`);
    }
    // Before any recursive conversion: the same limits every receiver applies (no stack overflow here).
    const tooBig = checkContent(value);
    if (tooBig) throw new ValidationError(`insert into "${collection}" refused: the record has ${tooBig}.`);
    const id = uuidv7(this.#replica.now());
    const paths = new Set(Object.keys(value).filter((k) => value[k] !== undefined));
    // A record with bounded counters starts with its escrow, which only Automerge changes can carry.
    const bounded = spec.bounded ? initialEscrow(spec, value, this.#replica.device) : undefined;
    const create = bounded ? undefined : creationOf(value, spec.text, spec.counters);
    // A creation is built by every receiver as ONE Automerge change, which must stay within the op cap
    // (PROTOCOL.md 3.2); a larger record (a long pasted note, many keys) is written as Automerge
    // changes instead, in as many parts as the cap requires.
    if (create && creationOps(create) <= DEFAULT_CONTENT_LIMITS.maxOpsPerChange) {
      // The common case: no Automerge work now; every replica builds the same first change on demand.
      this.#working.set(id, {
        id,
        collection,
        space,
        baseDocHeads: null,
        baseHeads: [],
        doc: null,
        create,
        op: "insert",
        paths,
      });
      return id;
    }
    const converted = toAutomerge(bounded?.rest ?? value, "", spec) as Record<string, unknown>;
    const doc = changeInParts(
      A.init<Record<string, unknown>>({ actor: this.#replica.actor }),
      this.#time(),
      (d) => {
        Object.assign(d, converted);
        if (bounded) d[ESCROW_KEY] = bounded.escrow;
      },
    );
    this.#working.set(id, {
      id,
      collection,
      space,
      baseDocHeads: null,
      baseHeads: [],
      doc,
      op: "insert",
      paths,
    });
    return id;
  }

  /** The working document, built from its creation if this transaction inserted it lazily. */
  #doc(w: Working): A.Doc<unknown> {
    if (!w.doc) {
      w.doc = buildFromCreation(w.id, w.create!, this.#replica.actor);
      w.create = undefined;
    }
    return w.doc;
  }

  /**
   * The record's working state in this transaction, loaded on first use; deleted ones too. `reread`: from
   * IndexedDB even when the cached document is not known to be stale (see `Replica.loadForEdit`).
   */
  async #loadAny(collection: string, id: string, reread = false): Promise<Working> {
    const w = this.#working.get(id);
    if (w) {
      if (w.collection !== collection) throw new NotFound(`No record ${id} in "${collection}".`);
      return w;
    }
    const loaded = await this.#replica.loadForEdit(id, reread);
    if (!loaded || loaded.collection !== collection)
      throw new NotFound(`No record ${id} in "${collection}".`);
    const fresh: Working = {
      id: id as RecordId,
      collection,
      space: loaded.space,
      baseDocHeads: A.getHeads(loaded.doc),
      baseHeads: loaded.heads,
      // A copy unless no one else holds it: the cached document must stay as it is if this throws.
      doc: loaded.owned ? loaded.doc : A.clone(loaded.doc, { actor: this.#replica.actor }),
      op: "update",
      paths: new Set(),
    };
    this.#working.set(id, fresh);
    return fresh;
  }

  /** The record's working state, refused with `NotFound` once deleted. */
  async #load(collection: string, id: string, reread = false): Promise<Working> {
    const w = await this.#loadAny(collection, id, reread);
    if (w.doc && isDeleted(w.doc)) throw new NotFound(`Record ${id} was deleted.`);
    return w;
  }

  /**
   * Applies an Automerge change function to a record. The function gets the record as plain JavaScript
   * (strings read as strings) and must be synchronous. A change over the op cap (a long pasted text,
   * thousands of keys) is made as several Automerge changes of the same commit.
   */
  async update(collection: string, id: string, fn: (draft: Record<string, unknown>) => void): Promise<void> {
    const spec = this.#spec(collection);
    const w = await this.#load(collection, id);
    w.doc = changeInParts(
      this.#doc(w),
      {
        ...this.#time(),
        patchCallback: (patches) => {
          for (const p of patches) if (p.path.length > 0) w.paths.add(String(p.path[0]));
        },
      },
      (d) => {
        const r = fn(makeDraft(d as Record<string, unknown>, spec)) as unknown;
        if (r instanceof Promise) throw new ValidationError("An update function must be synchronous.");
      },
    );
  }

  /**
   * Changes a record's escrow (`$escrow`, escrow.ts) with `fn` over the raw Automerge document, which the
   * app's drafts never reach; `field` is recorded as the path changed. Only escrow-ops.ts calls it.
   */
  async editEscrow(
    collection: string,
    id: string,
    field: string,
    fn: (doc: Record<string, unknown>) => void,
  ): Promise<void> {
    // Read, not cached: under the escrow's cross-tab lock, the last holder's write must be seen even
    // before Dexie reports it here, or two tabs could spend the same rights.
    const w = await this.#load(collection, id, true);
    w.doc = A.change(this.#doc(w), this.#time(), (d) => fn(d as Record<string, unknown>));
    w.paths.add(field);
  }

  /** Marks a record deleted (a tombstone that syncs like any edit and wins over concurrent edits). */
  async delete(collection: string, id: string): Promise<void> {
    const w = await this.#load(collection, id);
    w.doc = A.change(this.#doc(w), this.#time(), (d) => {
      (d as Record<string, unknown>)[DELETED_FIELD] = true;
    });
    w.op = "delete";
  }

  /**
   * Brings a record back to its version at `heads` (a past version of its own document; empty: the
   * record did not exist then, so it is deleted) as new changes by this device: text diffed, counters
   * incremented by the difference, a deleted record recreated under its id (its tombstone key removed,
   * so a concurrent delete elsewhere still wins). `message` rides on the Automerge change. Returns
   * whether anything changed.
   */
  async restore(collection: string, id: string, heads: readonly string[], message: string): Promise<boolean> {
    const spec = this.#spec(collection);
    const w = await this.#loadAny(collection, id);
    const doc = this.#doc(w);
    const deleted = isDeleted(doc);
    const target = heads.length === 0 ? null : (A.view(doc, [...heads]) as Record<string, unknown>);
    if (target === null || isDeleted(target)) {
      if (deleted) return false;
      w.doc = A.change(doc, { ...this.#time(), message }, (d) => {
        (d as Record<string, unknown>)[DELETED_FIELD] = true;
      });
      w.op = "delete";
      return true;
    }
    const before = A.getHeads(doc);
    const next = changeInParts(
      doc,
      {
        ...this.#time(),
        message,
        patchCallback: (patches) => {
          for (const p of patches) if (p.path.length > 0) w.paths.add(String(p.path[0]));
        },
      },
      (d) => {
        const root = d as Record<string, unknown>;
        if (deleted) delete root[DELETED_FIELD];
        reconcileTo(root, target, spec);
      },
    );
    const after = A.getHeads(next);
    if (after.length === before.length && after.every((h, i) => h === before[i])) return false;
    w.doc = next;
    w.paths.delete(DELETED_FIELD);
    if (w.op === "delete") w.op = "update";
    return true;
  }

  /** The record as this transaction sees it (its own writes included), or undefined. */
  async get(collection: string, id: string): Promise<Row | undefined> {
    const w = this.#working.get(id);
    if (w) {
      if (w.collection !== collection) return undefined;
      if (!w.doc) return creationRow(id, w.create!);
      return isDeleted(w.doc) ? undefined : materialize(id, w.doc, this.#inbox(collection));
    }
    return (await this.#replica.dexie.table(collection).get(id)) as Row | undefined;
  }

  /** Turns the transaction into commits (one per space) and publishes its documents to the cache. */
  prepare(): PreparedCommit[] {
    const bySpace = new Map<SpaceId, PreparedEntry[]>();
    const at = this.#replica.now();
    const all = [...this.#working.values()].map((w) => ({
      w,
      changes: !w.doc
        ? []
        : w.baseDocHeads
          ? A.getChangesSince(w.doc, w.baseDocHeads as string[])
          : A.getAllChanges(w.doc),
    }));
    // Receivers refuse content over the limits (PROTOCOL.md 3.2): refuse it here first, so an honest
    // device never makes a commit the others quarantine.
    for (const { w, changes } of all) {
      const why = w.doc ? checkContent(w.doc) : null;
      const problem = why ? { message: why } : recordProblem({ changes, create: w.create });
      if (problem)
        throw new ValidationError(`This transaction cannot sync: record ${w.id} has ${problem.message}.`);
    }
    // A commit travels sealed in one frame: refuse one that could never be sealed, by its exact sealed
    // size, before anything is published or a sequence number is taken.
    const bySpaceSize = new Map<SpaceId, SizedChange[]>();
    for (const { w, changes } of all) {
      if (changes.length === 0 && !w.create) continue;
      const sized: SizedChange = {
        collection: w.collection,
        paths: w.op === "delete" ? [] : [...w.paths],
        changes,
        ...(w.create ? { create: w.create } : {}),
      };
      const list = bySpaceSize.get(w.space);
      if (list) list.push(sized);
      else bySpaceSize.set(w.space, [sized]);
    }
    for (const [space, sized] of bySpaceSize) assertSealable(space, sized);
    for (const { w, changes } of all) {
      if (changes.length === 0 && !w.create) continue;
      const cache = this.#replica.cache;
      const e = cache.get(w.id) ?? {
        doc: null,
        persistedHeads: [],
        pins: 0,
        version: 0,
        collection: w.collection,
        space: w.space,
      };
      e.doc = w.doc;
      e.create = w.create;
      e.creationOnly = false;
      e.pins++;
      e.version++;
      cache.set(w.id, e);
      const entry: PreparedEntry = {
        record: w.id,
        collection: w.collection,
        op: w.op,
        changes,
        ...(w.create ? { create: w.create } : {}),
        paths: w.op === "delete" ? [] : [...w.paths].sort(),
        space: w.space,
        baseHeads: w.baseHeads,
        doc: w.doc,
        version: e.version,
      };
      const list = bySpace.get(w.space);
      if (list) list.push(entry);
      else bySpace.set(w.space, [entry]);
    }
    // Only what is written: each announced row is settled (or failed) by the write that follows.
    this.#announce(all.filter(({ w, changes }) => changes.length > 0 || w.create).map(({ w }) => w));
    return [...bySpace].map(([space, entries]) => ({ space, at, entries }));
  }

  /** Shows the new rows to this tab's live queries now; the write that stores them follows. */
  #announce(working: readonly Working[]): void {
    const edits = this.#replica.localEdits;
    const byTable = new Map<string, Working[]>();
    for (const w of working) if (edits.watched(w.collection)) pushTo(byTable, w.collection, w);
    for (const [table, ws] of byTable) {
      const rows = ws.map((w) =>
        !w.doc
          ? creationRow(w.id, w.create!)
          : isDeleted(w.doc)
            ? undefined
            : materialize(w.id, w.doc, this.#inbox(w.collection)),
      );
      edits.edited(
        table,
        ws.map((w) => w.id),
        rows,
      );
    }
  }
}
