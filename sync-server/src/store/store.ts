/**
 * The relay's storage port. A store keeps, per space, the SHA-256 of its access token and the sealed
 * commits of every device, and enforces the sequence rule of PROTOCOL.md ("Acknowledgement and the
 * sequence rule"). Space and device ids are 32-character lowercase hex. Adapters: `MemoryStore`
 * (tests), `SqliteStore` (default, durable); every adapter must pass `runStoreContract`.
 *
 * @example
 * const stored = await store.registerSpace(spaceHex, tokenHash);
 * const result = await store.append(spaceHex, [incomingCommit(bytes)], { quotaBytes: 64 << 20 });
 * if (result.refused) sendError(result.refused.code);
 */
export interface RelayStore {
  /**
   * Registers `space` with `tokenHash` if it is unknown, atomically. Returns the hash stored for the
   * space: the given one for a new space, the first registrant's otherwise (the caller compares).
   * `creator` is the raw Ed25519 public key whose claim registered it (PROTOCOL.md 1, "Space claims"),
   * kept with a new space only; the relay keeps keys, never names.
   */
  registerSpace(space: string, tokenHash: Uint8Array, creator?: Uint8Array): Promise<Uint8Array>;
  /** The token hash of a registered space, or `undefined`. */
  tokenHash(space: string): Promise<Uint8Array | undefined>;
  /**
   * The creator key a registered space was claimed with, or `undefined` (an unknown space, or one
   * registered before claims existed).
   */
  creator(space: string): Promise<Uint8Array | undefined>;
  /**
   * The space's membership log as stored: the JSON text of the operation of every membership commit
   * (`IncomingCommit.membershipOp`) appended so far, in arrival order (empty for an unknown space). Kept
   * so the relay can decide who may connect without scanning commits; nothing authoritative, like the
   * commits themselves (a wiped store is filled again by the devices' re-uploads).
   */
  membershipOps(space: string): Promise<string[]>;
  /** Per device (hex), the highest stored sequence number. Devices with nothing stored are absent. */
  vector(space: string): Promise<Map<string, number>>;
  /**
   * Stores commits in order, in one durable write: when the promise resolves, everything reported as
   * stored survives a crash, the membership operations they carry included. Stops at the first refused commit; the ones after it are not looked at.
   */
  append(space: string, commits: readonly IncomingCommit[], options: AppendOptions): Promise<AppendResult>;
  /**
   * Replaces the stored commit at the new one's (device, seq) with it, in one durable write, under the
   * rule of `replaceRule`: only the device's head, only with the same routing header and length, only
   * when the bytes differ. Lets an author replace a copy damaged on its way to the relay (PROTOCOL.md
   * section 5, "Replacing a damaged upload"). Usage and arrival order are unchanged. Throws for an
   * unregistered space.
   */
  replace(space: string, commit: IncomingCommit): Promise<ReplaceResult>;
  /**
   * Commits with a higher seq than `since` (absent device = 0), each device's in sequence order and
   * devices interleaved in arrival order. Returns at least one commit when any is missing, then stops
   * before `maxBytes` or `maxCount` would be exceeded.
   */
  read(space: string, since: ReadonlyMap<string, number>, options: ReadOptions): Promise<ReadResult>;
  /**
   * Stores `bytes` as the space's one snapshot, described by `vector` (device hex -> seq), in one
   * atomic durable write, and frees the bytes of the snapshot it replaces. Checks, atomically with the
   * write and in this order:
   * - `"gap"`: the vector names a seq beyond the device's stored head (absent = 0): the snapshot would
   *   claim commits the relay cannot serve after it;
   * - `"stale"`: a stored snapshot has a seq above the new vector's for some device (absent = 0), i.e.
   *   the new vector does not dominate the stored one (equal vectors do dominate: it is replaced);
   * - `"quota"` (only with `options.quotaBytes`): the space would hold more than that many bytes,
   *   counting its commits and the new snapshot instead of the old one.
   * Otherwise `"stored"`: when the promise resolves the snapshot survives a crash. A refusal keeps the
   * stored snapshot. Throws for an unregistered space.
   */
  putSnapshot(
    space: string,
    vector: ReadonlyMap<string, number>,
    bytes: Uint8Array,
    options?: SnapshotOptions,
  ): Promise<SnapshotVerdict>;
  /** The space's snapshot and its vector, or `undefined` when it has none. */
  getSnapshot(space: string): Promise<StoredSnapshot | undefined>;
  /**
   * Compacts `space` up to `vector` (device hex -> seq), in one durable write (PROTOCOL.md 12, "Relay
   * compaction"): every stored data commit at or below its device's entry loses its bytes for good,
   * while its hash stays, so the sequence rule still chains the device's next commit to it and a
   * re-upload of it is a duplicate, acknowledged and not stored again; membership commits stay whole
   * (the log, in clear, holds no record content); the stored snapshot stays only if its vector covers
   * `vector` (it is then where fresh devices start; one below it names commits that are gone). Reads skip compacted commits. Usage drops by the bytes freed. Durable and gone from the
   * store's files when the promise resolves (SQLite overwrites freed pages and truncates its WAL).
   * Throws for an unregistered space.
   */
  compact(space: string, vector: ReadonlyMap<string, number>): Promise<CompactResult>;
  /** Bytes (commits and the snapshot) and commits stored for a space (0 for an unknown space). */
  usage(space: string): Promise<{ commits: number; bytes: number }>;
  /** Totals over the whole store, for `/metrics`. */
  stats(): Promise<{ spaces: number; commits: number; bytes: number }>;
  /** Flushes and releases resources. The store is unusable afterwards. */
  close(): Promise<void>;
}

/** What `compact` freed. */
export interface CompactResult {
  /** Data commits whose bytes were dropped by this call. */
  commits: number;
  /** Bytes freed (commits and the snapshot). */
  bytes: number;
  /** Whether the stored snapshot was dropped (it did not cover the vector). */
  snapshot: boolean;
}

/** Limits applied by `putSnapshot`. */
export interface SnapshotOptions {
  /** Refuse (`"quota"`) if the space would then hold more than this many bytes. */
  quotaBytes?: number;
}

/**
 * What `putSnapshot` did: stored, or why it kept the old snapshot. `"store-full"` comes only from
 * `CappedStore` (the relay-wide byte cap), never from an adapter.
 */
export type SnapshotVerdict = "stored" | "stale" | "gap" | "quota" | "store-full";

/** A stored snapshot: its version vector (device hex -> seq) and its opaque sealed bytes. */
export interface StoredSnapshot {
  vector: Map<string, number>;
  bytes: Uint8Array;
}

/** A commit ready to append: its routing fields, its hashes and its whole sealed bytes. */
export interface IncomingCommit {
  /** Device id, hex. */
  device: string;
  seq: number;
  /** The header's prevHash: must equal `hash` of the device's stored commit `seq - 1`. */
  prevHash: Uint8Array;
  /** SHA-256 of `bytes`. */
  hash: Uint8Array;
  /** The whole sealed commit. */
  bytes: Uint8Array;
  /**
   * The JSON text of the operation a membership commit carries (header epoch `MEMBERSHIP_EPOCH`), absent
   * for a data commit: `append` adds it to the space's membership log in the same durable write as the
   * commit, and only when the commit is newly stored.
   */
  membershipOp?: string;
}

/** Limits applied by `append`. */
export interface AppendOptions {
  /** Refuse a new commit (code `quota`) if the space would then hold more than this many bytes. */
  quotaBytes: number;
}

/** Why a commit was refused (`"store-full"`: the relay-wide byte cap of `CappedStore`). */
export type RefusalCode = "conflict" | "gap" | "chain" | "quota" | "store-full";

/** What `append` did. */
export interface AppendResult {
  /** Newly stored commits, in order (duplicates excluded), for live fan-out. */
  stored: IncomingCommit[];
  /** Byte-identical duplicates of stored commits: acknowledged again, stored once. */
  duplicates: number;
  /** For each device in the accepted part of the batch, its highest stored seq after the append. */
  heads: Map<string, number>;
  /** The first refused commit, if any; it and the rest of the batch were not stored. */
  refused?: { device: string; seq: number; code: RefusalCode; index: number };
}

/** What `replace` did: replaced, already identical, or why not (see `replaceRule`). */
export type ReplaceVerdict = "replaced" | "duplicate" | "conflict" | "gap";

/** The verdict of `replace`, and the device's stored head after it (0 when none). */
export interface ReplaceResult {
  verdict: ReplaceVerdict;
  head: number;
}

/** Bounds for `read`. */
export interface ReadOptions {
  maxBytes: number;
  maxCount: number;
}

/** What `read` returned. */
export interface ReadResult {
  commits: Uint8Array[];
  bytes: number;
  /** True when the store holds further commits beyond `since` that were not returned. */
  more: boolean;
}
