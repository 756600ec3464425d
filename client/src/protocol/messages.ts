/**
 * What one replica holds of one device's commits in a space: every sequence number from 1 to `seq`.
 * A device absent from a vector counts as 0.
 *
 * @example
 * const entry: VectorEntry = { device: fromHex(deviceHex, 16), seq: 42 };
 */
export interface VectorEntry {
  device: Uint8Array;
  seq: number;
}

/** First frame of a connection, sender to receiver: the versions it speaks and who it is. */
export interface HelloMessage {
  type: "hello";
  minVersion: number;
  maxVersion: number;
  device: Uint8Array;
}

/**
 * Answer to `hello`: the version both sides will use, and one page of the answering side's vector for
 * the space. `more`: further `welcome` pages follow (each at most `MAX_VECTOR_ENTRIES` entries); the
 * vector is the union of the pages, and the handshake is complete with the page that has `more` clear.
 */
export interface WelcomeMessage {
  type: "welcome";
  version: number;
  vector: VectorEntry[];
  more?: boolean;
}

/**
 * "Send me every commit with a higher seq than my vector, at most `maxBytes` of them." `more`: this
 * is not the last page of the vector; the receiver keeps the entries and answers only the page with
 * `more` clear, with one reply for the whole vector.
 */
export interface PullMessage {
  type: "pull";
  space: Uint8Array;
  vector: VectorEntry[];
  maxBytes: number;
  more?: boolean;
}

/**
 * Whole sealed commits: an upload, the answer to a `pull`, or a live push. `more`: the sender holds
 * further commits the pull did not get (pull again). `reply`: this frame answers a `pull` (exactly one
 * frame does); absent or false for uploads and live pushes. `replace`: an upload by the author of
 * commits the relay stored damaged: each replaces the stored commit at its (device, seq) under the
 * rule of PROTOCOL.md section 5 ("Replacing a damaged upload").
 */
export interface CommitsMessage {
  type: "commits";
  space: Uint8Array;
  commits: Uint8Array[];
  more: boolean;
  reply?: boolean;
  replace?: boolean;
}

/** "I have durably stored every commit of `device` up to `seq`", per entry. */
export interface AckMessage {
  type: "ack";
  space: Uint8Array;
  entries: VectorEntry[];
}

/**
 * Stable error codes carried by `error` frames (the byte value is in `ERROR_CODE_BYTES`).
 * - `protocol`: malformed or unexpected frame. `version`: no common protocol version.
 * - `unauthorized`: bad credentials (peer to peer; the relay refuses at the HTTP upgrade instead).
 * - `rate-limited`, `too-large`: a limit of the receiver was exceeded.
 * - `quota`: the space is full. `conflict`: another commit holds that (device, seq).
 * - `gap`: seq is not the next one. `chain`: prevHash is not the hash of the stored previous commit.
 * - `internal`: the receiver failed (e.g. its store). `going-away`: the receiver is shutting down.
 * - `membership`: the space's membership log refuses the commit (its device was removed, is a reader or
 *   not a member; a membership operation that does not verify); carries the commit.
 * - `residency`: the space is pinned to a region (its membership log's `create`) and this relay is of
 *   another region or declares none; the commit was not stored; carries the commit.
 * - `stale-snapshot`: the uploaded snapshot's vector does not dominate the stored one's; the stored
 *   snapshot was kept (a snapshot naming commits the relay lacks is refused with `gap` instead).
 * - `compaction`: sent only by relays of the first compaction release, for a `compact` membership
 *   operation whose vector no stored snapshot covered (the commit was not stored); relays now store
 *   every one and compact only what their snapshot covers (PROTOCOL.md 12). Kept so clients read it.
 */
export type ErrorCodeName =
  | "protocol"
  | "version"
  | "unauthorized"
  | "rate-limited"
  | "quota"
  | "conflict"
  | "gap"
  | "chain"
  | "too-large"
  | "internal"
  | "going-away"
  | "stale-snapshot"
  | "signature"
  | "membership"
  | "residency"
  | "compaction";

/**
 * Byte value of each error code on the wire.
 *
 * @example
 * ERROR_CODE_BYTES.quota; // 5
 */
export const ERROR_CODE_BYTES: Readonly<Record<ErrorCodeName, number>> = Object.freeze({
  protocol: 1,
  version: 2,
  unauthorized: 3,
  "rate-limited": 4,
  quota: 5,
  conflict: 6,
  gap: 7,
  chain: 8,
  "too-large": 9,
  internal: 10,
  "going-away": 11,
  "stale-snapshot": 12,
  signature: 13,
  membership: 14,
  residency: 15,
  compaction: 16,
});

/** Something went wrong. `fatal`: the sender closes the connection after this frame. */
export interface ErrorMessage {
  type: "error";
  code: ErrorCodeName;
  message: string;
  fatal: boolean;
  /**
   * The commit the error is about, for `quota`, `conflict`, `gap` and `chain` of a `commits` upload.
   * Absent when refusing a snapshot (`stale-snapshot`, and `gap`, `quota`, `too-large` for a snapshot).
   */
  device?: Uint8Array;
  seq?: number;
}

/** Liveness probe; the receiver answers `pong` with the same nonce. */
export interface PingMessage {
  type: "ping";
  nonce: number;
}

/** Answer to `ping`. */
export interface PongMessage {
  type: "pong";
  nonce: number;
}

/**
 * One part of a snapshot upload, client to relay. A snapshot is an opaque sealed blob (the relay never
 * decrypts it) describing the space up to `vector`. It travels as `parts` frames numbered `part` =
 * 0 .. parts - 1, in order, on one connection; every part repeats the same `vector`. `bytes` is this
 * part's slice of the blob. A new part 0 abandons an unfinished upload.
 *
 * @example
 * send({ type: "snapshot-put", space, vector, part: 0, parts: 1, bytes: sealed });
 */
export interface SnapshotPutMessage {
  type: "snapshot-put";
  space: Uint8Array;
  vector: VectorEntry[];
  /** 0-based index of this part, below `parts`. */
  part: number;
  /** Number of parts of the whole snapshot, 1 to 65535. */
  parts: number;
  bytes: Uint8Array;
}

/** "Send me the stored snapshot of this space", client to relay; answered by `snapshot` frames. */
export interface SnapshotGetMessage {
  type: "snapshot-get";
  space: Uint8Array;
}

/**
 * One part of the stored snapshot, relay to client, answering `snapshot-get`: `parts` frames in order
 * (`parts` >= 1), or a single frame with `parts: 0`, `part: 0`, an empty vector and empty bytes when
 * the relay holds no snapshot for the space.
 */
export interface SnapshotMessage {
  type: "snapshot";
  space: Uint8Array;
  vector: VectorEntry[];
  part: number;
  /** 0 means "no snapshot"; otherwise the number of parts, 1 to 65535. */
  parts: number;
  bytes: Uint8Array;
}

/** The whole uploaded snapshot with this vector is durably stored and is now the space's snapshot. */
export interface SnapshotStoredMessage {
  type: "snapshot-stored";
  space: Uint8Array;
  vector: VectorEntry[];
}

/**
 * An opaque signalling message between two connections of one space (WebRTC offers, answers and ICE
 * candidates, sealed by the clients), forwarded by the relay and never stored. `from` must be the device
 * id the sender gave in its `hello`; `to` is one device, or 16 zero bytes for every other connection of
 * the space. `payload` is at most `MAX_SIGNAL_PAYLOAD_BYTES`.
 *
 * @example
 * send({ type: "signal", space, from: me, to: SIGNAL_BROADCAST, payload: sealedAnnounce });
 */
export interface SignalMessage {
  type: "signal";
  space: Uint8Array;
  from: Uint8Array;
  to: Uint8Array;
  payload: Uint8Array;
}

/**
 * Every frame of protocol version 2, discriminated by `type`.
 *
 * @example
 * function handle(m: Message) {
 *   switch (m.type) { case "commits": store(m.commits); break; ... }
 * }
 */
export type Message =
  | HelloMessage
  | WelcomeMessage
  | PullMessage
  | CommitsMessage
  | AckMessage
  | ErrorMessage
  | PingMessage
  | PongMessage
  | SnapshotPutMessage
  | SnapshotGetMessage
  | SnapshotMessage
  | SnapshotStoredMessage
  | SignalMessage;

/** The `type` strings of `Message`. */
export type MessageType = Message["type"];

/**
 * Byte value of each message type on the wire (byte 1 of every frame).
 *
 * @example
 * MESSAGE_TYPE_BYTES.commits; // 4
 */
export const MESSAGE_TYPE_BYTES: Readonly<Record<MessageType, number>> = Object.freeze({
  hello: 1,
  welcome: 2,
  pull: 3,
  commits: 4,
  ack: 5,
  error: 6,
  ping: 7,
  pong: 8,
  "snapshot-put": 9,
  "snapshot-get": 10,
  snapshot: 11,
  "snapshot-stored": 12,
  signal: 13,
});
