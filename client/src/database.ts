import {
  DatabaseClosed,
  InsecureContext,
  SchemaError,
  UnsignedDevice,
  ValidationError,
} from "./errors.ts";
import { subtle } from "./crypto/subtle.ts";
import { newSpaceId, randomBytes } from "./ids.ts";
import { live, type Observable } from "./live/observable.ts";
import { applyRemoteCommits, type ApplyReport } from "./replica/apply-remote.ts";
import {
  parseCollectionSpec,
  AUDIT_VIEWS_SPEC,
  type CollectionDeclaration,
  type CollectionSpec,
} from "./replica/collection-spec.ts";
import { Collection } from "./replica/collection.ts";
import { listConflicts, type Conflict, type ConflictsOptions } from "./replica/list-conflicts.ts";
import type {
  AnyRow,
  CollectionTypes,
  DeclarationTypes,
  RowSchema,
  RowType,
  SchemaTypes,
} from "./replica/collection-types.ts";
import type { Commit, StoredCommit } from "./replica/commit.ts";
import { changeFeed, type ChangeFeed, type ChangesOptions } from "./replica/change-feed.ts";
import { waitForRelay } from "./replica/wait-durable.ts";
import { assertHoldable, holdersOf, waitForHolders, watchHoldRequests } from "./spaces/hold-receipts.ts";
import { exportCommits, readVector } from "./replica/commit-log.ts";
import { openStore } from "./lock/open-store.ts";
import { Replica, WriteAborted } from "./replica/replica.ts";
import type { QuarantineRow, SpaceRow } from "./replica/stored-rows.ts";
import { Transaction } from "./replica/transaction.ts";
import { ESCROW_EDIT, type EscrowEdit } from "./replica/escrow-ops.ts";
import { startEscrowGrants } from "./replica/escrow-grants.ts";
import { restoreRecord, restoreSpace, type SpaceRestoreReport } from "./replica/restore-ops.ts";
import type { Row } from "./replica/materialize.ts";
import { rollBackUnsyncable, type UnsyncableRollback } from "./replica/roll-back-unsyncable.ts";
import type { CommitId, DeviceId, RecordId, SpaceId, VersionVector } from "./types.ts";
import { Locked, NotFound } from "./errors.ts";
import { ValueStore } from "./live/value-store.ts";
import { formatInviteLink } from "./spaces/invite-link.ts";
import { joinSpace } from "./spaces/join-space.ts";
import { claimNewSpace } from "./spaces/space-claim.ts";
import { announceLeaving, LEAVE_ANNOUNCE_MS } from "./spaces/announce-leaving.ts";
import { leaveSpace, type LeaveReport } from "./spaces/leave-space.ts";
import { readAcks } from "./sync/acks.ts";
import type { SyncOptions } from "./sync/sync-runner.ts";
import { LazySync, PausableSync } from "./lazy-sync.ts";
import {
  ensureMembership,
  inviteMember,
  removeMember,
  revokeInvitation,
  setMemberRole,
  type InviteOptions,
} from "./spaces/manage-members.ts";
import { joinByInvitation } from "./spaces/join-by-invitation.ts";
import { isMemberInvite } from "./spaces/member-invite-link.ts";
import { readMembers, type MembersView } from "./spaces/members-view.ts";
import { readMembership } from "./spaces/membership-log.ts";
import { readErasure, type ErasureStatus } from "./spaces/erase-record.ts";
import { compactSpace, type Compaction } from "./spaces/compact-space.ts";
import { sweepRetention, type RetentionReport } from "./spaces/retention-sweep.ts";
import { isRegionName, type Role } from "./members/membership-op.ts";
import type { AtRestLock, LockState } from "./lock/at-rest-lock.ts";

export type { SyncOptions } from "./sync/sync-runner.ts";
import { LOCAL_STATUS, type SyncStatus } from "./status/sync-status.ts";
import type { BundleImportReport } from "./bundles/bundle-io.ts";
import { enforceMembership } from "./sealing/enforce-membership.ts";
import { integrityLogOf, type IntegrityReport } from "./sealing/integrity.ts";

export type * from "./database-types.ts";
import type {
  DeclarationsFor,
  Durability,
  OpenOptions,
  QuarantinedCommit,
  Space,
  TransactOptions,
  TransactionApi,
  TransactionCollection,
  UntypedSchema,
} from "./database-types.ts";
import { durableOf } from "./durable-option.ts";
import { discardInterruptedImports } from "./replica/interrupted-imports.ts";
export type { AnyRow, RowType } from "./replica/collection-types.ts";

// Names a collection cannot take because the database object already uses them (or Promise and Object do).
const RESERVED = new Set([
  "name",
  "replica",
  "persisted",
  "then",
  "constructor",
  "toString",
  "valueOf",
  "toJSON",
  "hasOwnProperty",
]);

/**
 * An open Shoal database: collections as properties (`db.patients`), atomic multi-record
 * transactions, spaces, and the entry points sync uses.
 *
 * (The whole public API is this one class, so this file is past 400 lines; each method checks its
 * arguments and hands the work to the module that does it: replica/, spaces/, sync/, bundles/.)
 */
export class DatabaseCore<S extends SchemaTypes = UntypedSchema> {
  readonly name: string;
  /** @internal The local replica (Dexie, documents, writer). */
  readonly replica: Replica;
  /** Whether the browser granted persistent storage (undefined where it cannot tell, as in Node). */
  persisted: boolean | undefined;
  readonly #collections = new Map<string, Collection<object>>();
  readonly #status = new ValueStore<SyncStatus>(LOCAL_STATUS);
  /** What the last `sync()` started, until stopped. */
  #sync: PausableSync | null = null;
  /** The relay URL of the last `sync()`, where member invitations are redeemed. */
  #relay: string | undefined;
  readonly #knownSpaces: Set<string>;
  readonly #atRest: AtRestLock | undefined;

  /** @internal Use `openDatabase`. */
  constructor(name: string, replica: Replica, knownSpaces: Set<string>, atRest?: AtRestLock) {
    this.#atRest = atRest;
    this.name = name;
    this.replica = replica;
    this.#knownSpaces = knownSpaces;
    for (const c of replica.specs.keys()) {
      const coll = new Collection<object>(this, c);
      this.#collections.set(c, coll);
      // Internal collections (`_auditViews`) are reachable by `collection(name)` only.
      if (!c.startsWith("_")) Object.defineProperty(this, c, { value: coll, enumerable: true });
    }
    startEscrowGrants(this);
  }

  /** This device's id (opaque, random, per database). */
  get deviceId(): DeviceId {
    return this.replica.device;
  }

  /** The database's own private space: where records go unless `insert` names another. */
  get privateSpace(): SpaceId {
    return this.replica.privateSpace;
  }

  /** A collection by name. */
  collection<K extends keyof S & string>(name: K): CollectionOf<S[K]> {
    const c = this.#collections.get(name);
    if (!c) throw new ValidationError(`Unknown collection "${name}".`);
    return c as unknown as CollectionOf<S[K]>;
  }

  /**
   * Runs `fn` as ONE atomic commit per space touched: all of its inserts, updates and deletes are
   * written together (rows, Automerge binaries, commit log, sequence number) in one IndexedDB
   * transaction, or, if `fn` throws or storage fails, none of them. Resolves with `fn`'s result once
   * durably saved on this device.
   *
   * Transaction functions of one page run one at a time; keep them short (no network waits inside).
   *
   * With `{ durable: "relay" }` it resolves only once the relay has acknowledged every commit of the
   * transaction as durably stored (it waits while offline, for as long as it takes, unless `timeout` or
   * `signal` ends the wait); the commit is saved on this device first either way, and a wait that ends
   * early (`timeout`, `signal`, `close()`) rejects with `DurabilityPending`, which carries the commit ids
   * and `fn`'s result. Other transactions are not held up by the wait.
   *
   * @example
   * const id = await db.transact(async (tx) => {
   *   const p = await tx.patients.insert({ name: "Ada", notes: "" }, { space });
   *   await tx.visits.insert({ patientId: p, date: "2026-11-25" }, { space });
   *   return p;
   * });
   */
  async transact<R>(fn: (tx: TransactionApi<S>) => Promise<R> | R, options?: TransactOptions): Promise<R> {
    return this.#transact((tx) => fn(this.#txApi(tx)), options);
  }

  /** `transact` over the transaction itself (restores use it). */
  async #transact<R>(fn: (tx: Transaction) => Promise<R> | R, options?: TransactOptions): Promise<R> {
    const replica = this.replica;
    replica.assertOpen();
    const durable = durableOf(options);
    const release = await replica.lock.acquire();
    let commits: StoredCommit[];
    let result: R;
    try {
      replica.assertOpen();
      const generation = replica.generation;
      const tx = new Transaction(replica, this.#knownSpaces);
      result = await fn(tx);
      if (generation !== replica.generation) throw new WriteAborted(undefined);
      const prepared = tx.prepare();
      if (prepared.length === 0) return result;
      if (typeof durable === "object")
        await assertHoldable(
          replica,
          prepared.map((p) => p.space),
        );
      const saved = replica.enqueue(prepared, false);
      release();
      if (replica.lock.waiting === 0) replica.kick();
      commits = await saved;
    } finally {
      release();
      if (replica.lock.waiting === 0) replica.kick();
    }
    // Saved on this device: from here on nothing is undone, whatever happens to the wait.
    if (durable === "relay") await waitForRelay(replica, commits, result, options!);
    else if (durable !== "local") await waitForHolders(replica, commits, durable.devices, result, options);
    return result;
  }

  #txApi(tx: Transaction): TransactionApi<S> {
    const cache = new Map<string, TransactionCollection>();
    const collection = (name: string): TransactionCollection => {
      let c = cache.get(name);
      if (c) return c;
      if (!this.replica.specs.has(name)) throw new ValidationError(`Unknown collection "${name}".`);
      c = {
        insert: async (value, options) => {
          const ref = options?.space;
          const space = (typeof ref === "object" ? ref.id : ref) ?? this.replica.privateSpace;
          await this.#ensureSpaceKnown(space);
          return tx.insert(name, value, options);
        },
        update: (id, fn) => tx.update(name, id, fn as (draft: Record<string, unknown>) => void),
        delete: (id) => tx.delete(name, id),
        restore: (id, commit) => restoreRecord(this.replica.dexie, tx, name, id, commit),
        get: (id) => tx.get(name, id) as Promise<(Row & { id: RecordId }) | undefined>,
      };
      const escrowEdit: EscrowEdit = (id, field, fn) => tx.editEscrow(name, id, field, fn);
      Object.defineProperty(c, ESCROW_EDIT, { value: escrowEdit });
      cache.set(name, c);
      return c;
    };
    return new Proxy({ collection } as object, {
      get: (target, key) =>
        key === "collection" ? collection : typeof key === "string" ? collection(key) : undefined,
    }) as TransactionApi<S>;
  }

  async #ensureSpaceKnown(space: string): Promise<void> {
    if (this.#knownSpaces.has(space)) return;
    // Another tab may have created or joined it.
    if (await this.replica.dexie.table<SpaceRow>("_spaces").get(space)) this.#knownSpaces.add(space);
    else throw new ValidationError(`Unknown space ${space}: create or join it first.`);
  }

  /**
   * Creates a space (the unit of sharing and encryption) with a random 32-byte key, kept on this
   * device. Its id derives from this device's signing key and a random salt, and the device signs the
   * space's claim, which lets a relay register it (PROTOCOL.md 1, "Space claims"); without keys (an
   * insecure context, which cannot sync anyway) the id is random and there is no claim.
   */
  async createSpace(options: {
    name: string;
    /**
     * Pins the space to a region (e.g. `"eu"`): written into its signed membership log, so the space
     * has members from the start (this device its admin, named `me`), and no member can change it.
     * Its commits then go only to relays that declare that region (`--region`); peers and files still
     * carry it. See README "Data residency".
     */
    residency?: string;
    /** Your name in a pinned space's membership (default "Creator"). */
    me?: string;
  }): Promise<Space> {
    this.replica.assertOpen();
    if (typeof options?.name !== "string" || options.name.trim() === "")
      throw new ValidationError("A space needs a name.");
    const residency = options.residency;
    if (residency !== undefined && !isRegionName(residency))
      throw new ValidationError(
        `A residency is a region name: 1 to 32 lowercase letters, digits or -, starting with a letter (not ${JSON.stringify(residency)}).`,
      );
    if (residency !== undefined && !this.replica.identity) throw new UnsignedDevice();
    const key = randomBytes(32);
    const identity = this.replica.identity;
    const claimed = identity ? await claimNewSpace(identity, key) : undefined;
    const row: SpaceRow = {
      id: claimed?.id ?? newSpaceId(),
      name: options.name.trim(),
      key,
      createdAt: Date.now(),
      private: false,
      ...(claimed && { claim: claimed.claim }),
    };
    await this.replica.addSpace(row);
    this.#knownSpaces.add(row.id);
    if (residency === undefined) return { id: row.id, name: row.name, private: false };
    await ensureMembership(this.replica, row.id, options.me ?? "Creator", residency);
    return { id: row.id, name: row.name, private: false, residency };
  }

  /** The spaces this device belongs to. */
  async spaces(): Promise<Space[]> {
    this.replica.assertOpen();
    const rows = await this.replica.dexie.table<SpaceRow>("_spaces").toArray();
    return rows.map((r) => ({ id: r.id, name: r.name, private: r.private }));
  }

  /** A live query over anything readable through the query API. */
  live<T>(querier: () => Promise<T> | T): Observable<T> {
    this.replica.assertOpen();
    return live(querier);
  }

  /**
   * A live list of the conflicted inbox fields (declared `conflicts: { field: "inbox" }`): per field, every
   * value devices wrote concurrently, with who (device, person) and when. Resolve one with the
   * collection's `resolve`; every replica lists the same conflicts once it holds the same commits.
   *
   * @example
   * db.conflicts().subscribe((list) => renderInbox(list));
   */
  conflicts(options?: ConflictsOptions): Observable<Conflict[]> {
    this.replica.assertOpen();
    return live(() => listConflicts(this.replica, options));
  }

  /** This replica's version vector (per space, per device: highest contiguous sequence held). */
  vector(spaces?: readonly SpaceId[]): Promise<VersionVector> {
    this.replica.assertOpen();
    return readVector(this.replica.dexie, spaces);
  }

  /** The commits a replica at `since` lacks, in causal order. For sync engines and file export. */
  exportCommits(
    since: VersionVector,
    options?: { spaces?: readonly SpaceId[]; limit?: number },
  ): Promise<Commit[]> {
    this.replica.assertOpen();
    return exportCommits(this.replica.dexie, since, options);
  }

  /**
   * Applies commits from another replica: idempotent, any order, each whole or not at all. A commit
   * that cannot be applied is quarantined alone (see `quarantine()`); `from` says where they came
   * from, for the quarantine's record.
   */
  applyCommits(commits: readonly Commit[], from = "sync"): Promise<ApplyReport> {
    // Not counted as use of the database (sync calls it: a syncing device still locks when idle), but
    // nothing is applied while it is closed or locked.
    if (this.replica.closed) throw new DatabaseClosed();
    if (this.replica.isLocked?.()) throw new Locked();
    return applyRemoteCommits(this.replica, commits, from);
  }

  /**
   * The commits of other devices this replica refused and keeps aside, never applied: each with its
   * author device, sequence, space, reason (`CommitQuarantined.reason`), message, when and where from.
   * Each was reported once as a `CommitQuarantined` error (in `db.status.lastError` while syncing).
   *
   * @example
   * for (const q of await db.quarantine()) console.warn(`${q.device} #${q.seq}: ${q.reason}: ${q.message}`);
   */
  async quarantine(space?: SpaceId | { readonly id: SpaceId }): Promise<QuarantinedCommit[]> {
    this.replica.assertOpen();
    const t = this.replica.dexie.table<QuarantineRow, string>("_quarantine");
    const id = typeof space === "string" ? space : space?.id;
    const rows = id ? await t.where("space").equals(id).toArray() : await t.toArray();
    return rows
      .sort((a, b) => a.at - b.at)
      .map(({ id, space, device, seq, reason, message, at, from }) => ({
        id: id as CommitId,
        space,
        device,
        seq,
        reason,
        message,
        at,
        from,
      }));
  }

  /**
   * A file with exactly the commits of `space` that a device at `since` lacks (its `db.vector()`, from
   * an earlier bundle's report or a QR code), or the whole space: sync by hand, with no network. The
   * commits stay sealed with the space's key, so the file is as opaque as the relay's store.
   *
   * @example
   * const bytes = await db.exportBundle({ space, since: vectorOfTheOtherDevice });
   * download(new Blob([bytes], { type: "application/octet-stream" }), "clinic.shoal");
   */
  exportBundle(options: {
    space: SpaceId | { id: SpaceId };
    since?: VersionVector;
  }): Promise<Uint8Array<ArrayBuffer>> {
    this.replica.assertOpen();
    // Loaded on first use: an app that never exchanges files never downloads the bundle code.
    return import("./bundles/bundle-io.ts").then(({ exportBundleOf }) => exportBundleOf(this, options));
  }

  /**
   * Applies a file from `exportBundle`. Every commit is opened and checked before any is applied: a
   * corrupted or foreign file (another space, a key this device lacks) is an `InvalidBundle` and changes
   * nothing; a truncated one imports its whole commits and reports what is still missing; importing
   * twice changes nothing. This device must have joined the bundle's space.
   *
   * @example
   * const report = await db.importBundle(input.files[0]);
   * if (!report.complete) alert(`Incomplete file: ${report.missing.length} devices still missing commits.`);
   */
  importBundle(bytes: Uint8Array | ArrayBuffer | Blob): Promise<BundleImportReport> {
    this.replica.assertOpen();
    return import("./bundles/bundle-io.ts").then(({ importBundleInto }) => importBundleInto(this, bytes));
  }

  /**
   * A self-contained, verifiable audit file of `space` (PROTOCOL.md 11): the signed commits of the
   * range (each device's as an unbroken chain), the membership log, the keys that open exactly the
   * commits carried (never the space key), and readable summaries (who, role, claimed time, record,
   * fields) that `npx shoal-audit verify <file>` re-derives from the signed commits. For an auditor
   * trusted with the content it carries.
   *
   * @example
   * const file = await db.exportAudit(space, { from: new Date("2026-01-01"), records: [patientId] });
   */
  exportAudit(
    space: SpaceId | { readonly id: SpaceId },
    options?: import("./audit/export-audit.ts").ExportAuditOptions,
  ): Promise<Uint8Array<ArrayBuffer>> {
    this.replica.assertOpen();
    const id = typeof space === "string" ? space : space?.id;
    // Loaded on first use, like bundles: an app that never audits never downloads the code.
    return import("./audit/export-audit.ts").then(({ exportAuditOf }) => exportAuditOf(this, id, options));
  }

  /**
   * Sync status, always available: state, connections, commits waiting for a relay acknowledgement,
   * last sync. Subscribing delivers the current value at once.
   *
   * @example
   * db.status.subscribe((s) => badge.textContent = s.state === "synced" ? "Up to date" : `${s.pendingCommits} waiting`);
   */
  get status(): ValueStore<SyncStatus> {
    return this.#status;
  }

  /**
   * What this replica found wrong in what other devices sent it, since the database was opened: two
   * different commits for one (device, seq) (equivocation: the first is kept), a commit that does not
   * follow its predecessor, a commit bad at its source, a snapshot that contradicts the sealed commits.
   * Each entry names the space, device, seq, both versions' hashes and where each came from (relay,
   * peer, tab, bundle, snapshot). Watchable like `status`; the devices concerned are also flagged in
   * `status.flagged`.
   *
   * @example
   * db.integrity.subscribe(({ entries }) => entries.forEach((e) => console.warn(e.kind, e.device, e.seq)));
   */
  get integrity(): ValueStore<IntegrityReport> {
    return integrityLogOf(this.replica.dexie).store;
  }

  /**
   * Starts syncing every space of this device through the relay (and/or the given transports), and
   * keeps at it: reconnecting with backoff, uploading local commits, receiving others'. Returns a
   * function that stops it. The sync code (and the WebRTC code, with `webrtc`) is loaded on the first
   * call, so an app that never syncs never downloads it; if it cannot load, `db.status.lastError` says so.
   * Throws `InsecureContext` where WebCrypto is missing and `UnsignedDevice` on a device without signing
   * keys (a database created without WebCrypto, or by a version before signed commits).
   *
   * With Web Locks (every current browser), the tabs of this browser that sync this database elect one
   * leader (`db.status.role`): it alone holds relay connections and syncs for all of them, since their
   * commits meet in the shared IndexedDB; the others mirror its status and one of them takes over when
   * it closes or stops. The leader's options are the ones in force.
   *
   * @example
   * const stop = db.sync({ relay: "ws://127.0.0.1:8787" });
   */
  sync(options: SyncOptions): () => void {
    this.replica.assertOpen();
    // Fail here, with a message a person understands, rather than deep inside sealing later.
    subtle();
    if (!this.replica.identity) throw new UnsignedDevice();
    this.#sync?.stop();
    if (options.relay) this.#relay = options.relay;
    // Straight to the replica, not through the API: sync traffic is not use that keeps a lock open.
    const run = new PausableSync(
      () =>
        new LazySync(
          {
            name: this.name,
            replica: this.replica,
            status: this.#status,
            vector: (spaces) => readVector(this.replica.dexie, spaces),
            // Through the method (a test seam: the fuzzer's injected bug, a close right after applying).
            applyCommits: (commits, from) => this.applyCommits(commits, from),
            exportCommits: (since, opts) => exportCommits(this.replica.dexie, since, opts),
          },
          options,
        ),
      this.#atRest?.state,
    );
    this.#sync = run;
    return () => {
      run.stop();
      if (this.#sync === run) this.#sync = null;
    };
  }

  /**
   * Publishes a snapshot of a space to the relay now (writers also do it by the `snapshots` policy of `sync`):
   * a fresh device then downloads it and only the commits after it. Resolves true once stored, false
   * if the relay keeps a newer one or does not hold everything the snapshot names yet.
   */
  publishSnapshot(space: SpaceId | { readonly id: SpaceId }): Promise<boolean> {
    if (!this.#sync) return Promise.reject(new ValidationError("publishSnapshot needs sync() running."));
    return this.#sync.publishSnapshot(typeof space === "string" ? space : space.id);
  }

  /**
   * Retries every sync connection now instead of waiting out the reconnect backoff (e.g. from a
   * "Retry now" button). Open connections are dropped and made again; nothing is lost.
   */
  reconnect(): void {
    this.#sync?.reconnect();
  }

  /**
   * An invitation link to a space. With `options` (or in a space that has members), a **member
   * invitation** (PROTOCOL.md 10): a new secret, signed into the space's membership log by this admin
   * device with a role (default `writer`), an expiry (default 7 days) and a number of uses (default 1);
   * the link carries the secret, never the space key, and the relay and every member refuse it once
   * used, expired or revoked. The first such invitation starts the space's membership (only its
   * creator's device can), and from then on only members write there.
   *
   * Without options in a space without members: a key link (`#join=`) for an open space, where whoever
   * holds the link reads and writes.
   *
   * @example
   * const link = await db.invite(clinic, { role: "reader", expiresIn: 24 * 3600_000 });
   */
  async invite(
    space: SpaceId | { readonly id: SpaceId },
    options?: string | (InviteOptions & { base?: string }),
  ): Promise<string> {
    this.replica.assertOpen();
    const id = typeof space === "string" ? space : space.id;
    const row = await this.replica.dexie.table<SpaceRow>("_spaces").get(id);
    if (!row) throw new NotFound(`No space ${id} on this device.`);
    const here = (globalThis as { location?: { origin: string; pathname: string } }).location;
    const page = here ? `${here.origin}${here.pathname}` : "shoal:";
    if (typeof options === "object" || (await readMembership(this.replica.dexie, id)))
      return (await inviteMember(this.replica, id, typeof options === "object" ? options : {}, page)).link;
    return formatInviteLink(options ?? page, { id: row.id, key: row.key, name: row.name, claim: row.claim });
  }

  /**
   * Joins the space of an invitation link: the space is added to this device and, if syncing, its
   * records start arriving. A member invitation (`#invite=`) is redeemed at the relay (`options.relay`,
   * or the one this database syncs with): this device becomes a member with the invitation's role as
   * `options.name`, even while whoever invited is offline. A malformed or corrupted link is an
   * `InvalidInvitation`; a used, expired or revoked one an `AccessDenied` with that `reason`.
   *
   * @example
   * await db.join(location.href, { name: "Nurse Joy" });
   */
  async join(link: string, options?: { relay?: string; name?: string }): Promise<Space> {
    this.replica.assertOpen();
    let row: SpaceRow;
    if (isMemberInvite(link)) {
      const relay = options?.relay ?? this.#relay;
      if (!relay)
        throw new ValidationError(
          "Joining by a member invitation needs the relay: call sync() first or pass relay.",
        );
      row = await joinByInvitation(this.replica, link, relay, options?.name ?? "New member");
    } else row = await joinSpace(this.replica, link);
    this.#knownSpaces.add(row.id);
    return { id: row.id, name: row.name, private: row.private };
  }

  /**
   * How far the erase of record `id` has gone (live): `erased` of the `of` current member devices of
   * its space wrote a signed receipt, and whether the relay compacted it away (`relayCompacted`).
   *
   * @example
   * db.erasure(id).subscribe((e) => console.log(`erased on ${e.erased} of ${e.of} devices`));
   */
  erasure(id: string): Observable<ErasureStatus> {
    this.replica.assertOpen();
    return live(() => readErasure(this.replica, id));
  }

  /**
   * Compacts a space at the relay (an admin, PROTOCOL.md 12): publishes a snapshot without erased
   * records, then signs `compact` up to its vector; the relay drops the commits it covers and every
   * device its sealed copies. Needs `sync()` running and the space synced; waits until every current
   * member device has signed that it holds what is compacted (`timeout`/`signal` end the wait with
   * `CompactionError`). See README "Compaction".
   *
   * @example
   * const { vector } = await db.compact(space);
   */
  compact(
    space: SpaceId | { readonly id: SpaceId },
    options?: { readonly timeout?: number; readonly signal?: AbortSignal },
  ): Promise<Compaction> {
    const id = typeof space === "string" ? space : space.id;
    return compactSpace(this.replica, id, (s) => this.publishSnapshot(s), options);
  }

  /**
   * Erases every record past its collection's `retention` rule that this device may erase (an admin
   * of its space), each as a signed `erase`. Runs by itself when the database opens; call it again
   * from a long-lived page (say, daily). See README "Retention".
   */
  sweepRetention(): Promise<RetentionReport> {
    // One at a time: two sweeps at once would both erase the same record (two operations).
    const next = this.#sweeping.then(() => sweepRetention(this.replica));
    this.#sweeping = next.catch(() => undefined);
    return next;
  }

  #sweeping: Promise<unknown> = Promise.resolve();

  /**
   * The members of a space, live: people with their roles and devices (`you` marks this device), its
   * invitations, removed devices and key epoch. `managed` is false for an open space.
   *
   * @example
   * db.members(clinic).subscribe((m) => render(m.members.map((p) => `${p.name} (${p.role})`)));
   */
  members(space: SpaceId | { readonly id: SpaceId }): Observable<MembersView> {
    this.replica.assertOpen();
    const id = typeof space === "string" ? space : space.id;
    return live(() => readMembers(this.replica.dexie, this.replica.device, id));
  }

  /** Gives a member a new role (an admin only). Demoting to `reader` keeps what they wrote so far. */
  setRole(space: SpaceId | { readonly id: SpaceId }, person: string, role: Role): Promise<void> {
    this.replica.assertOpen();
    return setMemberRole(this.replica, typeof space === "string" ? space : space.id, person, role);
  }

  /**
   * Removes a member (all their devices) or one lost device (an admin; anyone may remove their own
   * devices), and rotates the space key so nothing written afterwards is readable to them. Commits they
   * make after the removal are dropped by every replica, however they arrive.
   *
   * @example
   * await db.remove(clinic, { person: nurse.person });
   * await db.remove(clinic, { device: stolenTablet });
   */
  remove(
    space: SpaceId | { readonly id: SpaceId },
    target: { person: string } | { device: string },
  ): Promise<void> {
    this.replica.assertOpen();
    return removeMember(this.replica, typeof space === "string" ? space : space.id, target);
  }

  /** Withdraws an invitation (its key, from `members(space).invitations`): it can no longer be redeemed. */
  revokeInvitation(space: SpaceId | { readonly id: SpaceId }, invitation: string): Promise<void> {
    this.replica.assertOpen();
    return revokeInvitation(this.replica, typeof space === "string" ? space : space.id, invitation);
  }

  /**
   * A link that adds another device of yours to a space (single-use, 1 hour by default): open it on
   * the new device with `acceptDeviceLink`. It joins as you, with your role.
   */
  async linkDevice(
    space: SpaceId | { readonly id: SpaceId },
    options?: { expiresIn?: number; base?: string },
  ): Promise<string> {
    this.replica.assertOpen();
    const id = typeof space === "string" ? space : space.id;
    const me = (await readMembers(this.replica.dexie, this.replica.device, id)).members.find((m) => m.you);
    if (!me) throw new NotFound("This device is not a member of that space.");
    const here = (globalThis as { location?: { origin: string; pathname: string } }).location;
    const page = here ? `${here.origin}${here.pathname}` : "shoal:";
    return (
      await inviteMember(this.replica, id, { expiresIn: 60 * 60_000, ...options, person: me.person }, page)
    ).link;
  }

  /**
   * A recovery key for a space (an admin): a single-use admin invitation that never expires, as text
   * (`#recover=…`, about 350 characters: print it or keep the file offline). When every admin device is
   * lost, `db.join(recoveryKey, { name })` on a new device makes it an admin (as a new person in the
   * log). Anyone holding it can do the same, so keep it like a master key; it shows in
   * `members(space).invitations` (role `admin`) and an admin can revoke it and export another. Lost
   * together with every admin device, nobody can manage the space's members any more (its data stays
   * readable and writable by its members).
   */
  async exportRecoveryKey(
    space: SpaceId | { readonly id: SpaceId },
    options?: { base?: string },
  ): Promise<string> {
    this.replica.assertOpen();
    const id = typeof space === "string" ? space : space.id;
    const here = (globalThis as { location?: { origin: string; pathname: string } }).location;
    const page = here ? `${here.origin}${here.pathname}` : "shoal:";
    const century = 100 * 365 * 24 * 60 * 60_000;
    return (
      await inviteMember(
        this.replica,
        id,
        { role: "admin", expiresIn: century, uses: 1, kind: "recover", ...options },
        page,
      )
    ).link;
  }

  /** Accepts a link made by `linkDevice` on another device of yours. */
  acceptDeviceLink(link: string, options?: { relay?: string }): Promise<Space> {
    return this.join(link, options);
  }

  /**
   * Leaves a space: removes it, its key and all its data (records, history, queued uploads) from this
   * device in one transaction, and stops syncing it. Also the way out of a wrong join; this device can
   * join again with a link. The space goes on for the others. If it had written there, it can write
   * again once its own earlier commits are back from the relay or a peer (until then a write throws
   * `RejoinPending`). The private space cannot be left.
   *
   * `announce: true`, in a space with members, leaves for good: it first writes this device's own
   * removal into the log (its person's, when it is their only device) and, when syncing, waits (at
   * most `wait` ms, default 5 s) for the relay to take it, so the others list it no more and refuse
   * anything it might still send (`announced` in the report). A removed device can never be a member
   * of that space again (another device, or this app with a new database, can).
   *
   * @example
   * const { records } = await db.leave(space);
   * const { announced } = await db.leave(otherSpace, { announce: true });
   */
  async leave(
    space: SpaceId | { readonly id: SpaceId },
    options: { announce?: boolean; wait?: number } = {},
  ): Promise<LeaveReport> {
    const id = typeof space === "string" ? space : space?.id;
    if (typeof id !== "string") throw new ValidationError("leave needs a space or a space id.");
    this.replica.assertOpen();
    if (id === this.replica.privateSpace)
      throw new ValidationError("The database's private space cannot be left (delete the database instead).");
    const announced =
      options.announce === true &&
      (await announceLeaving(this.replica, id, this.#sync !== null, options.wait ?? LEAVE_ANNOUNCE_MS));
    const report = await leaveSpace(this.replica, id);
    this.#knownSpaces.delete(id);
    return { ...report, announced };
  }

  /**
   * The way out for a commit too large to sync (`CommitTooLarge` in `db.status.lastError`), which only
   * an older version could store: it blocks this device's uploads in its space. Removes this device's
   * unsyncable commits and later ones that built on the same records (none ever left this device),
   * rebuilds those records without them, keeps and renumbers the other later commits, and returns per
   * space what it did, with each affected record's `before` value (what the user last saw) so the app
   * can save it again in parts. Sync then uploads the kept commits. Resolves `[]` when nothing is stuck.
   *
   * @example
   * for (const r of await db.rollBackUnsyncable())
   *   for (const rec of r.records) if (rec.before) offerToSaveInParts(rec.collection, rec.before);
   */
  rollBackUnsyncable(space?: SpaceId | { readonly id: SpaceId }): Promise<UnsyncableRollback[]> {
    this.replica.assertOpen();
    return rollBackUnsyncable(this.replica, typeof space === "object" ? space.id : space);
  }

  /**
   * The change feed: every commit applied on this device (made here, or received from the relay, a tab,
   * a peer, a bundle or a snapshot), oldest first, then each new one as it is applied, until the loop
   * stops, `signal` fires or the database closes (`DatabaseClosed`). Each `Change` names its commit,
   * author device, records (id, collection, op, paths) and a `cursor`: pass it as `since` after a reload
   * to get exactly the commits after it, none skipped and none repeated. An async iterable, an
   * Observable, and `batches()` (one `ChangeBatch` with its cursor per read).
   *
   * @example
   * for await (const batch of db.changes({ since: saved, collections: ["patients"] }).batches()) {
   *   await fetch(hook, { method: "POST", body: JSON.stringify(batch.changes) });
   *   localStorage.setItem("cursor", batch.cursor);
   * }
   */
  changes(options?: ChangesOptions): ChangeFeed {
    this.replica.assertOpen();
    return changeFeed(this.replica, options);
  }

  /**
   * Restores a space to a point in time (`to`: a commit id, or a time as ms or a `Date`): every record
   * changed since is brought back to its version at that point, as new commits by this device (a few
   * hundred records per commit, each commit within the size limit), so history is kept and nothing is
   * rewritten. A record created after the point is deleted; one deleted since is recreated under its
   * id. Needs the writer role (`NotPermitted` otherwise). See README "History".
   *
   * @example
   * const report = await db.restore(clinic, { to: Date.parse("2026-12-01T09:00:00Z") });
   */
  async restore(
    space: SpaceId | { readonly id: SpaceId },
    options: { to: CommitId | number | Date },
  ): Promise<SpaceRestoreReport> {
    this.replica.assertOpen();
    const id = typeof space === "string" ? space : space?.id;
    if (typeof id !== "string") throw new ValidationError("restore needs a space or a space id.");
    await this.#ensureSpaceKnown(id);
    return restoreSpace(this.replica, (fn) => this.#transact(fn), id, options?.to);
  }

  /**
   * Where a commit is durably stored: on this device, acknowledged by the relay or not, and which other
   * member devices signed a hold receipt for it (receipts are written only when asked for, by
   * `durable: { devices }`).
   */
  async durability(commit: CommitId): Promise<Durability> {
    const [space, device, seqText] = commit.split(".");
    const seq = Number(seqText);
    const local = (await this.replica.dexie.table("_commits").where("id").equals(commit).count()) > 0;
    const acked = (await readAcks(this.replica.dexie))[space!]?.[device!] ?? 0;
    const devices = await holdersOf(this.replica, space as SpaceId, device as DeviceId, seq);
    return { local, relay: local && seq <= acked, devices };
  }

  /** `"locked"` or `"unlocked"`, live (README "Encryption at rest"); `"unlocked"` without a lock. */
  get lockState(): ValueStore<LockState> {
    return this.#atRest?.state ?? NO_LOCK;
  }

  /** Locks now: the data key and decrypted data leave memory; reads and writes throw `Locked`. */
  async lock(): Promise<void> {
    return this.#lockOf().lock();
  }

  /** Unlocks with the passphrase (`WrongPassphrase` otherwise). */
  async unlock(passphrase: string): Promise<void> {
    return this.#lockOf().unlock(passphrase);
  }

  /** Changes the passphrase (`WrongPassphrase` if `current` is wrong); only the data key is rewrapped. */
  async changePassphrase(current: string, next: string): Promise<void> {
    return this.#lockOf().changePassphrase(current, next);
  }

  #lockOf(): AtRestLock {
    if (this.#atRest) return this.#atRest;
    throw new ValidationError("This database has no lock: open it with lock: { passphrase }.");
  }

  /** Writes what is queued, stops syncing, then closes. Reopen with `openDatabase` to go on; nothing is lost. */
  async close(): Promise<void> {
    // Releases the tab lock too, so another tab takes the connections over at once.
    this.#sync?.stop();
    this.#sync = null;
    return this.replica.close();
  }
}

/** The collection type of what the compiler knows about it. */
export type CollectionOf<X extends CollectionTypes> = Collection<X["row"], X["indexes"], X["counters"]>;

/** An open database of the collection types `S`: `DatabaseCore` plus one property per collection. */
export type DatabaseOf<S extends SchemaTypes> = DatabaseCore<S> & {
  readonly [K in keyof S]: CollectionOf<S[K]>;
};

/**
 * An open database with the row types `M` (each without `id`): `Database<{ patients: Patient }>`.
 * Without `M`, rows are `AnyRow`.
 */
export type Database<M extends Record<string, unknown> = Record<string, AnyRow>> = DatabaseOf<{
  [K in keyof M]: RowSchema<RowType<M[K]>>;
}>;

/** The database type `openDatabase` gives for the declarations `C` (see `collection<T>()`). */
export type DatabaseFromDeclarations<C> = DatabaseOf<{ [K in keyof C]: DeclarationTypes<C[K]> }>;

/**
 * Opens (creating or upgrading in place) a Shoal database.
 *
 * Types come from the declaration: index names, `text` and `counters` paths are read from it, so
 * `db.patients.where("nmae")` does not compile. Rows are open objects whose `text` fields are strings
 * and `counters` numbers (`Counter`s in `update` drafts). For full row types, declare each collection
 * with `collection<Patient>()({ ... })`, or give the row types as the type parameter:
 * `openDatabase<{ patients: Patient }>(...)` (then `where` accepts any field of `Patient`).
 *
 * @example
 * const db = await openDatabase({
 *   name: "clinic",
 *   collections: {
 *     patients: collection<Patient>()({ indexes: "id, name, ward, [ward+name], *tags", text: ["notes"] }),
 *     visits: "id, patientId, date",
 *   },
 * });
 */
export function openDatabase<const C extends Record<string, CollectionDeclaration>>(
  options: OpenOptions<C>,
): Promise<DatabaseFromDeclarations<C>>;
/**
 * Opens a Shoal database whose row types the app gives: `openDatabase<{ patients: Patient }>(...)`.
 * `text` must name string fields of the row type and `counters` number fields.
 */
export function openDatabase<M extends Record<string, unknown>>(
  options: OpenOptions<DeclarationsFor<M>>,
): Promise<Database<M>>;
export async function openDatabase(options: OpenOptions): Promise<DatabaseCore> {
  if (typeof options?.name !== "string" || options.name === "")
    throw new ValidationError("openDatabase needs a name.");
  if (!(globalThis as { indexedDB?: unknown }).indexedDB) throw new InsecureContext("IndexedDB");
  const specs = new Map<string, CollectionSpec>();
  for (const [name, decl] of Object.entries(options.collections ?? {})) {
    if (RESERVED.has(name) || name in DatabaseCore.prototype)
      throw new SchemaError(`Collection name "${name}" is reserved by the database API.`);
    specs.set(name, parseCollectionSpec(name, decl));
  }
  // View events (`auditViews`) go to an internal collection every database declares, so every device
  // syncs them whether or not its own collections log views.
  specs.set(AUDIT_VIEWS_SPEC.name, AUDIT_VIEWS_SPEC);
  const { dexie, atRest } = await openStore(options.name, [...specs.values()], options.lock);
  const replica = await Replica.open(dexie, specs, options.clock, atRest?.keeping);
  atRest?.attach(replica);
  replica.onMembership = (space) => enforceMembership(replica, space);
  watchHoldRequests(replica);
  // A snapshot import cut short by a close or a crash: what it wrote goes before anything reads it.
  await discardInterruptedImports(replica).catch(() => {});
  const known = new Set((await dexie.table<SpaceRow>("_spaces").toCollection().primaryKeys()) as string[]);
  const db = new DatabaseCore(options.name, replica, known, atRest);
  if (options.persist !== false) db.persisted = await requestPersistence();
  if ([...specs.values()].some((s) => s.retention)) {
    // In the background: opening never waits for it, and a database closed meanwhile just stops it.
    db.sweepRetention().catch((e: unknown) => {
      // Dexie's own DatabaseClosedError reaches here when the close lands inside one of its reads.
      if (!(e instanceof DatabaseClosed) && !replica.closed)
        console.warn("Shoal: the retention sweep failed", e);
    });
  }
  return db;
}

const NO_LOCK = new ValueStore<LockState>("unlocked");

async function requestPersistence(): Promise<boolean | undefined> {
  const storage = (globalThis as { navigator?: { storage?: { persist?: () => Promise<boolean> } } }).navigator
    ?.storage;
  if (!storage?.persist) return undefined;
  try {
    return await storage.persist();
  } catch {
    return undefined;
  }
}
