/**
 * @shoal/client: a local-first database for web apps. Every record is an Automerge document stored in
 * IndexedDB; queries read materialized rows; every write is a commit that syncs and merges.
 *
 * @example
 * import { collection, openDatabase } from "@shoal/client";
 * const db = await openDatabase({
 *   name: "clinic",
 *   collections: {
 *     patients: collection<Patient>()({ indexes: "id, name, ward, *tags", text: ["notes"] }),
 *     visits: "id, patientId, date",
 *   },
 * });
 * const id = await db.patients.insert({ name: "Ada", ward: "A", tags: [], notes: "" });
 * db.patients.live((c) => c.where("ward").equals("A")).subscribe((rows) => console.log(rows));
 *
 * @module @shoal/client
 */
export { openDatabase, DatabaseCore } from "./database.ts";
export type { LockOptions, LockState } from "./lock/at-rest-lock.ts";
export type { SpaceRestoreReport } from "./replica/restore-ops.ts";
export type {
  CollectionOf,
  Database,
  DatabaseFromDeclarations,
  DatabaseOf,
  DeclarationsFor,
  Durability,
  OpenOptions,
  QuarantinedCommit,
  Space,
  SyncOptions,
  TransactOptions,
  TransactionApi,
  TransactionCollection,
  UntypedSchema,
} from "./database.ts";
export type {
  FlaggedDevice,
  MissingCommits,
  StuckCommit,
  SyncStatus,
  TransportStatus,
} from "./status/sync-status.ts";
export { IntegrityError } from "./sealing/integrity.ts";
export type {
  IntegrityEntry,
  IntegrityKind,
  IntegrityReport,
  IntegritySource,
  IntegrityWitness,
} from "./sealing/integrity.ts";
export type { Transport, TransportConnection, TransportHandlers } from "./transports/transport.ts";
export { webSocketTransport } from "./transports/websocket-transport.ts";
export { Collection } from "./replica/collection.ts";
export type { RowOf } from "./replica/collection.ts";
export type { Conflict, ConflictCandidate, ConflictsOptions } from "./replica/list-conflicts.ts";
export {
  CONFLICTS_FIELD,
  CONFLICTED_FIELD,
  MAX_CONFLICT_VALUES,
  rowConflicts,
} from "./replica/conflict-values.ts";
export type { ConflictValue, FieldConflict, RowConflicts } from "./replica/conflict-values.ts";
export type { CollectionDeclaration } from "./replica/collection-spec.ts";
export type { ConflictRule, CounterRule } from "./replica/collection-types.ts";
export type { RetentionRule } from "./replica/collection-types.ts";
export type { RetentionReport } from "./spaces/retention-sweep.ts";
export { collection } from "./replica/collection-declaration.ts";
export type {
  AnyRow,
  CollectionTypes,
  CounterPath,
  DeclarationTypes,
  Draft,
  FieldPath,
  IndexName,
  IndexNames,
  InferredRow,
  PathTo,
  RowSchema,
  RowType,
  SchemaTypes,
  Synchronous,
  TextPath,
  TypedDeclaration,
} from "./replica/collection-types.ts";
export type { Commit, RecordChange } from "./replica/commit.ts";
export type { ApplyReport } from "./replica/apply-remote.ts";
export type { LeaveReport } from "./spaces/leave-space.ts";
export type { MembersView, MemberView, InvitationView } from "./spaces/members-view.ts";
export type { ErasureStatus } from "./spaces/erase-record.ts";
export type { Compaction } from "./spaces/compact-space.ts";
export type { InviteOptions } from "./spaces/manage-members.ts";
export type { Role } from "./members/membership-op.ts";
export type { HistoryEntry } from "./replica/commit-log.ts";
export type {
  Change,
  ChangeBatch,
  ChangedRecord,
  ChangeFeed,
  ChangesOptions,
} from "./replica/change-feed.ts";
export { Query, WhereClause } from "./replica/query.ts";
export type { InsertOptions, SpaceRef } from "./replica/transaction.ts";
export type { RolledBackRecord, UnsyncableRollback } from "./replica/roll-back-unsyncable.ts";
export type { Observable, Subscription } from "./live/observable.ts";
export { live } from "./live/observable.ts";
export { uuidv7 } from "./ids.ts";
export { asCounter } from "./replica/counter.ts";
export { rightsOfRow } from "./replica/escrow-ops.ts";
export type { Rights } from "./replica/escrow-ops.ts";
export type { EscrowSummary, EscrowFieldSummary } from "./replica/escrow.ts";
export type { Counter } from "./replica/counter.ts";
export { spliceText } from "./replica/draft.ts";
export * from "./errors.ts";
export { WriteAborted } from "./replica/replica.ts";
export type { CommitId, DeviceId, RecordId, SpaceId, VersionVector } from "./types.ts";
export type { BundleImportReport, ExportBundleOptions } from "./bundles/bundle-io.ts";
export type { BundleRange } from "./bundles/bundle.ts";
