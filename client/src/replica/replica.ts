import * as A from "@automerge/automerge";
import type { Dexie } from "dexie";
import { DatabaseClosed, ShoalError } from "../errors.ts";
import { newDeviceId, newSpaceId, randomBytes, toHex } from "../ids.ts";
import type { DeviceId, SpaceId } from "../types.ts";
import type { DeviceIdentity } from "../identity/device-identity.ts";
import { IDENTITY_AS_CRYPTOKEYS, type IdentityKeeping } from "../identity/identity-keeping.ts";
import { claimNewSpace } from "../spaces/space-claim.ts";
import type { CollectionSpec } from "./collection-spec.ts";
import type { StoredCommit } from "./commit.ts";
import { DocCache, type CachedDoc } from "./doc-cache.ts";
import { LocalEdits } from "../live/local-edits.ts";
import { buildFromCreation, CREATION_HEADS } from "./creation.ts";
import { sameHeads } from "./heads.ts";
import { Mutex } from "./mutex.ts";
import type { PreparedCommit } from "./prepared.ts";
import { asStorageError } from "./quota.ts";
import type { DocRow, SpaceRow } from "./stored-rows.ts";
import { writeLocalBatch } from "./write-local-batch.ts";
import { pushTo } from "./group-by.ts";
import { watchOtherWrites } from "./watch-other-writes.ts";
import { loadedFromCache } from "./loaded-from-cache.ts";

/** A document loaded for editing, with where it lives. */
export interface LoadedDoc {
  doc: A.Doc<unknown>;
  heads: readonly string[];
  collection: string;
  space: SpaceId;
  /** True when no one else holds `doc` (built just now for this caller): it may be changed in place. */
  owned?: boolean;
}

type Listener = (commits: readonly StoredCommit[], origin: "local" | "remote") => void;

interface Queued {
  commits: PreparedCommit[];
  resolve: (c: StoredCommit[]) => void;
  reject: (e: unknown) => void;
}

/** Most local commits one IndexedDB transaction takes; a longer queue is written in several. */
const MAX_BATCH = 500;

/**
 * The local replica of one database: the Dexie connection, the device identity, a bounded cache of
 * Automerge documents, and the single writer that turns prepared local commits into IndexedDB
 * transactions. Public API classes (`Database`, `Collection`, `Transaction`) sit on top of it.
 */
export class Replica {
  readonly dexie: Dexie;
  readonly device: DeviceId;
  /** Automerge actor of this page (tab): unique per open, so two tabs never produce clashing changes. */
  readonly actor: string;
  readonly privateSpace: SpaceId;
  readonly specs: ReadonlyMap<string, CollectionSpec>;
  readonly cache = new DocCache();
  /** This tab's commits as they are made, for its live queries (before IndexedDB stores them). */
  readonly localEdits = new LocalEdits();
  /** Held while a transaction function runs, and while remote commits are applied. */
  readonly lock = new Mutex();
  #queue: Queued[] = [];
  #flushing: Promise<void> | null = null;
  /** Records of the local write in flight (its own `storagemutated` report is not another writer's). */
  #writing: ReadonlySet<string> = new Set();
  #generation = 0;
  #closed = false;
  readonly #listeners = new Set<Listener>();
  readonly #closeListeners = new Set<() => void>();
  /** Counters for tests, the bench and the devtools panel. */
  readonly stats = {
    localTransactions: 0,
    localCommits: 0,
    remoteChunks: 0,
    applyChangesCalls: 0,
    /** Times remote apply work yielded to the event loop between slices. */
    applyYields: 0,
    /** Most Automerge operations one slice of remote apply work applied (at most `SLICE_OPS`). */
    maxOpsPerSlice: 0,
    remoteCommits: 0,
  };

  /**
   * This device's keys, which sign every commit it makes; `undefined` for a database created where
   * WebCrypto was missing (an insecure context) or by a version before signed commits: such a device
   * works locally but cannot sync.
   */
  identity: DeviceIdentity | undefined;

  /**
   * Set by an at-rest lock (`openDatabase({ lock })`): throws `Locked` while locked and notes the use,
   * for the idle lock. `assertOpen` calls it; the idle lock clears `identity` and the cache.
   */
  guard: (() => void) | undefined;
  /** Whether an at-rest lock holds the database locked now (set by `AtRestLock.attach`). */
  isLocked: (() => boolean) | undefined;

  /** This device's wall clock (ms). Only for display (commit time, id prefixes): merging never reads it. */
  readonly now: () => number;

  /**
   * Runs after membership operations of a space were stored and absorbed, to bring what counts here in
   * line with the log (`enforceMembership`). Set by the database: it opens sealed commits, which this
   * layer does not reach. Without it (a bare replica), verdicts stay those given on arrival.
   */
  onMembership: ((space: SpaceId) => Promise<unknown>) | undefined;
  /**
   * Spaces where `onMembership` could not bring back commits the log allows now, because one of them
   * waits for a commit not here yet: it runs again once more commits of the space apply.
   */
  readonly membershipRetry = new Set<SpaceId>();

  private constructor(
    dexie: Dexie,
    specs: ReadonlyMap<string, CollectionSpec>,
    device: DeviceId,
    privateSpace: SpaceId,
    now: () => number,
    identity: DeviceIdentity | undefined,
  ) {
    this.now = now;
    this.identity = identity;
    this.dexie = dexie;
    this.specs = specs;
    this.device = device;
    this.privateSpace = privateSpace;
    this.actor = toHex(randomBytes(16));
  }

  /**
   * Reads or creates the device id and the private space in one transaction, so two tabs opening a new
   * database at once agree on both.
   */
  static async open(
    dexie: Dexie,
    specs: ReadonlyMap<string, CollectionSpec>,
    now: () => number = Date.now,
    keeping: IdentityKeeping = IDENTITY_AS_CRYPTOKEYS,
  ): Promise<Replica> {
    const meta = dexie.table<{ key: string; value: unknown }>("_meta");
    const spaces = dexie.table<SpaceRow>("_spaces");
    // Keys are made outside the transaction (WebCrypto's promises would end an IndexedDB transaction);
    // when two tabs create a database at once, the first to write wins and the other's keys are dropped.
    const made = (await meta.get("device")) ? undefined : await keeping.fresh();
    const fresh = made?.identity;
    // The private space of a new device is claimed by its new identity, for the same reason: its id
    // and claim need WebCrypto. Used only if this transaction is the one that stores `fresh`.
    const privateKey = randomBytes(32);
    const claimed = fresh ? await claimNewSpace(fresh, privateKey) : undefined;
    const opened = await dexie.transaction("rw", meta, spaces, async () => {
      let device = (await meta.get("device"))?.value as DeviceId | undefined;
      let stored = (await meta.get("identity"))?.value as { device: DeviceId } | undefined;
      let privateSpace = (await meta.get("privateSpace"))?.value as SpaceId | undefined;
      if (!device) {
        if (!stored && made) {
          stored = made.stored as { device: DeviceId };
          await meta.put({ key: "identity", value: stored });
        }
        // Without WebCrypto (an insecure context) the device gets a random id and no keys: it works
        // locally and cannot sync, which `db.sync` explains.
        device = stored?.device ?? newDeviceId();
        await meta.put({ key: "device", value: device });
      }
      const mine = made !== undefined && stored === made.stored;
      if (!privateSpace) {
        const ours = claimed && mine ? claimed : undefined;
        privateSpace = ours?.id ?? newSpaceId();
        await spaces.put({
          id: privateSpace,
          name: "Private",
          key: privateKey,
          createdAt: Date.now(),
          private: true,
          ...(ours && { claim: ours.claim }),
        });
        await meta.put({ key: "privateSpace", value: privateSpace });
      }
      return { device, privateSpace, mine, stored: stored?.device === device ? stored : undefined };
    });
    const { device, privateSpace, stored } = opened;
    // Loaded after the transaction: WebCrypto would have ended it.
    const identity = !stored ? undefined : opened.mine ? fresh : await keeping.load(stored);
    const replica = new Replica(dexie, specs, device, privateSpace, now, identity);
    replica.onClose(watchOtherWrites(dexie, replica.cache, () => replica.#writing));
    return replica;
  }

  /** True once `close()` has begun. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Throws `DatabaseClosed` after `close()`. */
  assertOpen(): void {
    if (this.#closed) throw new DatabaseClosed();
    this.guard?.();
  }

  /** Current failure generation: a write failure bumps it, invalidating transactions built before. */
  get generation(): number {
    return this.#generation;
  }

  /** Listens to commits written by this handle (local) or applied from elsewhere (remote). */
  onCommits(listener: Listener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Runs `listener` once when `close()` begins (at once if it already did): what waits on the database
   * (a change feed, a wait for durability) stops then. Returns a function that removes it.
   */
  onClose(listener: () => void): () => void {
    if (this.#closed) {
      listener();
      return () => {};
    }
    this.#closeListeners.add(listener);
    return () => this.#closeListeners.delete(listener);
  }

  /** Tells listeners; a throwing listener must not break the writer. */
  emit(commits: readonly StoredCommit[], origin: "local" | "remote"): void {
    if (commits.length === 0) return;
    for (const l of this.#listeners) {
      try {
        l(commits, origin);
      } catch (e) {
        console.error("Shoal: a commit listener threw", e);
      }
    }
  }

  /**
   * Loads a record's document for editing: from the cache when IndexedDB still holds what the cache last
   * saw, merged with the stored one when another tab wrote it meanwhile, else from IndexedDB. A record
   * that holds only its creation is built from it here, on first edit. `heads` identify the version the
   * edit builds on (`CREATION_HEADS` for an unbuilt creation). `fresh`: read IndexedDB even when the cache
   * is not known to be stale, for an edit made under a cross-tab lock that must see the last holder's write
   * (an escrow take), whose report may still be on its way.
   */
  async loadForEdit(id: string, fresh = false): Promise<LoadedDoc | undefined> {
    const pinned = this.cache.get(id);
    if (pinned?.doc && pinned.pins > 0) {
      // This tab has writes of the record queued or in flight (someone typing): the cache is newer than
      // IndexedDB, and a read would wait behind that write transaction, so a key press would wait for
      // the disk. Another tab's write meanwhile is merged when this one is stored (writeLocalBatch).
      return {
        doc: pinned.doc,
        heads: A.getHeads(pinned.doc),
        collection: pinned.collection,
        space: pinned.space,
      };
    }
    if (!fresh && pinned && !pinned.stale && (pinned.doc || pinned.create)) {
      // Cached, and no other writer stored it since (watchOtherWrites): no read transaction, so a warm
      // update is the write transaction alone. A write whose report is still on its way is merged by
      // `writeLocalBatch`, which reads the stored heads inside its own transaction.
      return loadedFromCache(id, pinned, this.actor);
    }
    const row = await this.dexie.table<DocRow, string>("_docs").get(id);
    const e = this.cache.get(id);
    if (e) e.stale = false;
    if (e && !e.doc && e.create && row && sameHeads(row.heads, e.persistedHeads)) {
      // Still only its creation: a fresh build for the caller, the cache keeps the creation.
      return {
        doc: buildFromCreation(id, e.create, this.actor),
        heads: CREATION_HEADS,
        collection: e.collection,
        space: e.space,
        owned: true,
      };
    }
    if (e) {
      if (row && !sameHeads(row.heads, e.persistedHeads)) {
        e.doc = A.merge(A.clone(this.docOf(id, e), { actor: this.actor }), this.docOfRow(row));
        e.creationOnly = false;
        e.persistedHeads = row.heads;
      }
      const doc = this.docOf(id, e);
      return {
        doc,
        heads: e.creationOnly ? CREATION_HEADS : A.getHeads(doc),
        collection: e.collection,
        space: e.space,
      };
    }
    if (!row) return undefined;
    if (isCreationOnly(row)) {
      // Built on first edit (the costly part of it, issue 15's profile): built once, for the caller
      // alone, which then needs no copy; the cache keeps the creation until the edit is published.
      this.cache.set(id, {
        doc: null,
        create: row.create!,
        persistedHeads: row.heads,
        pins: 0,
        version: 0,
        collection: row.collection,
        space: row.space,
        creationOnly: true,
      });
      return {
        doc: buildFromCreation(id, row.create!, this.actor),
        heads: CREATION_HEADS,
        collection: row.collection,
        space: row.space,
        owned: true,
      };
    }
    const doc = this.docOfRow(row);
    const creationOnly = false;
    this.cache.set(id, {
      doc,
      persistedHeads: row.heads,
      pins: 0,
      version: 0,
      collection: row.collection,
      space: row.space,
      creationOnly,
    });
    return {
      doc,
      heads: creationOnly ? CREATION_HEADS : A.getHeads(doc),
      collection: row.collection,
      space: row.space,
    };
  }

  /** A cache entry's document, built from its creation on first use. */
  docOf(id: string, e: CachedDoc): A.Doc<unknown> {
    if (!e.doc) {
      e.doc = buildFromCreation(id, e.create!, this.actor);
      e.creationOnly = true;
    }
    return e.doc;
  }

  /** A stored record's document: loaded, or built from its creation. */
  docOfRow(row: DocRow): A.Doc<unknown> {
    return isCreationOnly(row)
      ? buildFromCreation(row.id, row.create!, this.actor)
      : A.load(row.bin, { actor: this.actor });
  }

  /**
   * Queues prepared commits for the writer and resolves once they are durably written (strict
   * durability), with their sequence numbers. Commits queued close together share one IndexedDB
   * transaction. The caller has already published its documents to the cache.
   */
  enqueue(commits: PreparedCommit[], flushNow: boolean): Promise<StoredCommit[]> {
    const done = new Promise<StoredCommit[]>((resolve, reject) =>
      this.#queue.push({ commits, resolve, reject }),
    );
    if (flushNow || this.#queue.length >= MAX_BATCH) void this.#flush();
    return done;
  }

  /** Starts writing what is queued (no-op if a write is running: it picks the queue up when done). */
  kick(): void {
    if (this.#queue.length > 0) void this.#flush();
  }

  /** Resolves when nothing is queued or being written. */
  async drain(): Promise<void> {
    while (this.#flushing || this.#queue.length > 0) {
      if (!this.#flushing) void this.#flush();
      await this.#flushing;
    }
  }

  #flush(): Promise<void> {
    if (this.#flushing) return this.#flushing;
    this.#flushing = (async () => {
      try {
        while (this.#queue.length > 0) {
          const items = this.#queue.splice(0, MAX_BATCH);
          const batch = items.flatMap((q) => q.commits);
          this.#writing = new Set(batch.flatMap((c) => c.entries.map((e) => e.record as string)));
          try {
            const { docs, commits } = await writeLocalBatch(
              this.dexie,
              this.device,
              this.actor,
              batch,
              this.specs,
            );
            this.stats.localTransactions++;
            this.stats.localCommits += commits.length;
            const stored = new Map<string, string[]>();
            for (const c of batch) for (const e of c.entries) pushTo(stored, e.collection, e.record);
            for (const [table, ids] of stored) this.localEdits.settled(table, ids);
            for (const [id, w] of docs) {
              const e = this.cache.get(id);
              if (!e) continue;
              e.pins = Math.max(0, e.pins - w.touches);
              e.persistedHeads = w.heads;
              if (w.merged && w.doc) {
                e.doc =
                  e.version === w.version
                    ? w.doc
                    : A.merge(A.clone(this.docOf(id, e), { actor: this.actor }), w.doc);
                e.creationOnly = false;
              }
            }
            let i = 0;
            for (const q of items) {
              q.resolve(commits.slice(i, i + q.commits.length));
              i += q.commits.length;
            }
            this.emit(commits, "local");
          } catch (err) {
            // Commits queued behind a failed one may build on it: fail them too, and forget every cached
            // document, since some hold changes that will never be saved.
            const error = asStorageError(err);
            const failed = [...items, ...this.#queue.splice(0)];
            this.#generation++;
            this.cache.clear();
            this.localEdits.failed();
            for (const q of failed) q.reject(error);
          } finally {
            this.#writing = new Set();
          }
        }
      } finally {
        this.#flushing = null;
      }
    })();
    return this.#flushing;
  }

  /** Adds a space row. */
  async addSpace(row: SpaceRow): Promise<void> {
    await this.dexie.table<SpaceRow>("_spaces").put(row);
  }

  /** Waits for queued writes, then closes the connection. */
  async close(): Promise<void> {
    if (this.#closed) return;
    await this.drain();
    this.#closed = true;
    const waiting = [...this.#closeListeners];
    this.#closeListeners.clear();
    for (const l of waiting) {
      try {
        l();
      } catch (e) {
        console.error("Shoal: a close listener threw", e);
      }
    }
    this.dexie.close();
  }
}

/** True for a stored record that holds only its creation (never built into a document). */
export function isCreationOnly(row: DocRow): boolean {
  return row.create !== undefined && row.bin.length === 0;
}

/** Thrown to a transaction whose documents were invalidated by an earlier failed write. */
export class WriteAborted extends ShoalError {
  constructor(cause: unknown) {
    super("WriteAborted", "An earlier write failed, so this transaction was not saved. Try again.", {
      cause,
    });
  }
}
