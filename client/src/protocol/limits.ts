/**
 * Protocol version spoken by this codec; `hello` negotiates it. Version 2 pages the vectors of
 * `welcome` and `pull` (no cap on the devices of a space) and adds the `replace` flag of `commits`.
 */
export const PROTOCOL_VERSION = 2;
/** Oldest protocol version this codec can still speak: version 1 is refused with `error version`. */
export const MIN_PROTOCOL_VERSION = 2;
/**
 * Frame version byte of `hello` (its layout is frozen, so any two implementations can negotiate) and
 * of an `error version` refusal sent in answer to a hello of an older version, so its sender can
 * read why it was refused (the `error` layout is the same in versions 1 and 2).
 */
export const HELLO_FRAME_VERSION = 1;
/**
 * Format version of a sealed commit (independent of the wire protocol version). Version 2 adds the
 * author's Ed25519 public key to the routing header and a signature after the body; version 1
 * (unsigned) is refused everywhere.
 */
export const COMMIT_FORMAT_VERSION = 2;
/** Length of an Ed25519 signature, in bytes. */
export const SIGNATURE_BYTES = 64;
/** Length of a raw Ed25519 (or X25519) public key, in bytes. */
export const PUBLIC_KEY_BYTES = 32;

/** Length of a space id and of a device id, in bytes. */
export const ID_BYTES = 16;
/** Length of a SHA-256 hash (`prevHash`), in bytes. */
export const HASH_BYTES = 32;

/** Largest frame (one WebSocket message) either side accepts: 1 MiB. */
export const MAX_FRAME_BYTES = 1_048_576;
/** Largest sealed commit (header + body): 1 MiB minus 4 KiB, so one commit always fits in one frame. */
export const MAX_COMMIT_BYTES = 1_044_480;
/** Smallest sealed-commit body: a 12-byte AES-GCM nonce plus a 16-byte tag around an empty plaintext. */
export const MIN_COMMIT_BODY_BYTES = 28;
/** Most commits in one `commits` frame. */
export const MAX_COMMITS_PER_BATCH = 1024;
/**
 * Most vector entries in one frame. A `welcome` or `pull` vector longer than this travels as several
 * pages (frames with the `more` flag), so a space may hold any number of devices; a snapshot's vector
 * (`snapshot-put`, `snapshot`, `snapshot-stored`) is one page, so snapshots cover spaces of at most
 * this many devices (larger spaces bootstrap from commits). `ack` lists the devices of one upload.
 */
export const MAX_VECTOR_ENTRIES = 4096;
/** Most replacements (`commits` with the `replace` flag) a relay accepts on one connection. */
export const MAX_REPLACEMENTS_PER_CONNECTION = 16;
/** Longest `error` message, in UTF-8 bytes. */
export const MAX_ERROR_MESSAGE_BYTES = 1024;
/** Largest snapshot (the whole blob, all parts together) a relay accepts: 64 MiB. */
export const MAX_SNAPSHOT_BYTES = 64 * 1024 * 1024;
/** Most parts of one snapshot (the `parts` field is a u16). */
export const MAX_SNAPSHOT_PARTS = 65535;
/**
 * Bytes of a `snapshot-put` or `snapshot` frame besides its vector and its part's bytes: version,
 * type, space, part, parts, vector count, bytes length. A part may hold at most
 * `maxFrameBytes - SNAPSHOT_FRAME_OVERHEAD - 24 * vector.length` bytes.
 */
export const SNAPSHOT_FRAME_OVERHEAD = 2 + 16 + 2 + 2 + 2 + 4;
/**
 * Largest part of a snapshot whose vector has `vectorEntries` entries that fits one frame.
 *
 * @example
 * const size = maxSnapshotPartBytes(vector.length); // split the sealed blob into parts of this size
 */
export function maxSnapshotPartBytes(vectorEntries: number, maxFrameBytes = MAX_FRAME_BYTES): number {
  return maxFrameBytes - SNAPSHOT_FRAME_OVERHEAD - 24 * vectorEntries;
}
/**
 * Largest payload of a `signal` frame: room for an SDP offer with its candidates (a few KiB) and the
 * sealing around it, small enough that forwarding signals costs a relay nearly nothing.
 */
export const MAX_SIGNAL_PAYLOAD_BYTES = 16 * 1024;
/** The `to` of a `signal` frame meaning "every other connection of the space": 16 zero bytes. */
export const SIGNAL_BROADCAST: Readonly<Uint8Array> = new Uint8Array(16);
/** Sequence numbers are positive integers below 2^53, so they stay exact in a JS number. */
export const MAX_SEQ = Number.MAX_SAFE_INTEGER;

/**
 * Bounds a decoder enforces. Every field defaults to the constant of the same name; a receiver may
 * tighten them (a relay on a small machine) but a sender must never exceed the defaults.
 *
 * @example
 * decodeMessage(frame, { maxFrameBytes: 256 * 1024 });
 */
export interface ProtocolLimits {
  maxFrameBytes: number;
  maxCommitBytes: number;
  maxCommitsPerBatch: number;
  maxVectorEntries: number;
}

/**
 * The default limits, equal to the exported constants.
 *
 * @example
 * const limits = { ...DEFAULT_LIMITS, maxFrameBytes: 65536 };
 */
export const DEFAULT_LIMITS: Readonly<ProtocolLimits> = Object.freeze({
  maxFrameBytes: MAX_FRAME_BYTES,
  maxCommitBytes: MAX_COMMIT_BYTES,
  maxCommitsPerBatch: MAX_COMMITS_PER_BATCH,
  maxVectorEntries: MAX_VECTOR_ENTRIES,
});

/**
 * Fills the missing fields of partial limits with the defaults.
 *
 * @example
 * resolveLimits({ maxFrameBytes: 4096 }).maxCommitsPerBatch; // 1024
 */
export function resolveLimits(limits?: Partial<ProtocolLimits>): ProtocolLimits {
  return { ...DEFAULT_LIMITS, ...limits };
}

/**
 * Bounds on what one commit may hold, checked by every replica before anything of a received commit is
 * stored or parsed further (PROTOCOL.md 3.2 and 4), and by the writer when a local transaction is
 * made, so an honest device never produces a commit that others refuse. A commit over any of them is
 * quarantined by the receiver (see `CommitQuarantined`), never applied. Every device of a space must
 * use the same values: they are part of the protocol, not settings.
 *
 * @example
 * if (depth > DEFAULT_CONTENT_LIMITS.maxDepth) refuse();
 */
export interface ContentLimits {
  /** Deepest nesting of objects and arrays inside one record (the record itself is depth 0). */
  maxDepth: number;
  /** Most keys of one object (a record's root included), or elements of one array. */
  maxKeysPerObject: number;
  /** Most values in one record, counting every object, array and scalar at any depth. */
  maxValuesPerRecord: number;
  /**
   * Most Automerge operations in one change (one op per map key, list element or text character),
   * and in the change a creation becomes when it is built. Bounds the time one change holds the page.
   */
  maxOpsPerChange: number;
  /** Most Automerge changes for one record in one commit. */
  maxChangesPerRecord: number;
  /** Most bytes for one record in one commit: its creation's JSON plus its Automerge changes. */
  maxRecordBytes: number;
}

/** Deepest nesting inside a record: 32 (IndexedDB's structured clone fails near 5,000). */
export const MAX_CONTENT_DEPTH = 32;
/** Most keys of one object or elements of one array: 10,000. */
export const MAX_KEYS_PER_OBJECT = 10_000;
/** Most values in one record, at any depth: 50,000. */
export const MAX_VALUES_PER_RECORD = 50_000;
/**
 * Most Automerge operations in one change, or in a creation once built: 512. The longest step a
 * receiver cannot cut: measured on a 2-core server in Node, 512 operations apply in 1-5 ms when they
 * append (text, list) or set new keys, and 15-40 ms at worst for scattered edits of a long text or
 * overwrites in a 10,000-key map (docs/RELIABILITY.md, "Large changes"). A writer cuts a larger write
 * into several changes of one commit (`changeInParts`), and writes a larger new record as changes.
 */
export const MAX_OPS_PER_CHANGE = 512;
/** Most Automerge changes for one record in one commit: 1,024. */
export const MAX_CHANGES_PER_RECORD = 1024;
/** Most bytes for one record in one commit: 512 KiB. */
export const MAX_RECORD_BYTES = 512 * 1024;

/**
 * The content limits every replica applies, equal to the exported constants.
 *
 * @example
 * const { maxDepth, maxOpsPerChange } = DEFAULT_CONTENT_LIMITS;
 */
export const DEFAULT_CONTENT_LIMITS: Readonly<ContentLimits> = Object.freeze({
  maxDepth: MAX_CONTENT_DEPTH,
  maxKeysPerObject: MAX_KEYS_PER_OBJECT,
  maxValuesPerRecord: MAX_VALUES_PER_RECORD,
  maxOpsPerChange: MAX_OPS_PER_CHANGE,
  maxChangesPerRecord: MAX_CHANGES_PER_RECORD,
  maxRecordBytes: MAX_RECORD_BYTES,
});
