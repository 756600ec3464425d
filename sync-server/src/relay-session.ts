import {
  CLOSE_CODES,
  MAX_COMMITS_PER_BATCH,
  MAX_REPLACEMENTS_PER_CONNECTION,
  MAX_SNAPSHOT_PARTS,
  MIN_PROTOCOL_VERSION,
  PROTOCOL_VERSION,
  ProtocolError,
  bytesEqual,
  decodeMessage,
  commitCountOf,
  encodeMessage,
  encodeVersionRefusal,
  fromHex,
  maxSnapshotPartBytes,
  toHex,
  vectorPages,
  type ErrorCodeName,
  type Message,
  type SignalMessage,
  type SnapshotPutMessage,
  type VectorEntry,
} from "@shoal/client/protocol";
import type { RelayLimits } from "./limits.ts";
import type { RelayMetrics } from "./metrics.ts";
import { ByteRate } from "./byte-rate.ts";
import { RateLimiter } from "./rate-limiter.ts";
import type { RelayLog } from "./relay-log.ts";
import type { HubMember, SignalOutcome, SpaceHub } from "./space-hub.ts";
import type { SpaceRates } from "./space-rates.ts";
import type { UploadBudget } from "./upload-budget.ts";
import { SnapshotUpload } from "./snapshot-upload.ts";
import { verifiedPrefix, type Refusal } from "./commit-refusal.ts";
import { REMOVED_CLOSE } from "./membership-gate.ts";
import { SpaceMemberships } from "./space-memberships.ts";
import type { RelayStore } from "./store/store.ts";
import { storeUpload, type CommitVerifier } from "./store-upload.ts";
import { byteBurst } from "./byte-burst.ts";
import { REPLACE_REFUSAL_MESSAGES } from "./replace-refusal-messages.ts";
import { SNAPSHOT_REFUSAL_CODES, SNAPSHOT_REFUSAL_MESSAGES } from "./snapshot-refusals.ts";
import { unrefTimer } from "./unref-timer.ts";

/** The transport a session writes to: a WebSocket in production, a fake in unit tests. */
export interface SessionSocket {
  send(bytes: Uint8Array): void;
  close(code: number, reason: string): void;
  /** Bytes queued but not yet written to the network. */
  bufferedAmount(): number;
  /** Stops reading from the network for `ms` (byte rate limits); without it the limits only count. */
  pauseReading?(ms: number): void;
}

/** Everything a session needs; shared by all sessions of a relay except `space` and `socket`. */
export interface SessionDeps {
  space: string;
  socket: SessionSocket;
  store: RelayStore;
  hub: SpaceHub;
  metrics: RelayMetrics;
  limits: RelayLimits;
  log: RelayLog;
  /** Per-space byte budgets shared by the relay's sessions (`spaceBytesPerSecond`). */
  spaceRates?: SpaceRates;
  /** The relay-wide budget of unfinished snapshot uploads (`maxUploadBufferBytes`). */
  uploadBudget?: UploadBudget;
  /**
   * The relay's membership states, shared by the sessions of a space (one of the session's own when
   * absent: correct, but resolved per session).
   */
  memberships?: SpaceMemberships;
  /** The device the connection proved at the upgrade (spaces with members), hex. */
  device?: string;
  /** Verifies uploaded commits off the relay's thread (see `UploadDeps.verifier`). */
  verifier?: CommitVerifier;
  /** The relay's region (`--region`), see `UploadDeps.region`. */
  region?: string;
}

// Bytes of a `commits` frame besides the commits: version, type, space, flags, count, and a u32
// length per commit. Pull replies are sized so the frame stays within the frame limit.
const COMMITS_FRAME_OVERHEAD = 2 + 16 + 1 + 2 + 4 * MAX_COMMITS_PER_BATCH;
// While sending a snapshot, the next part waits until the socket's unsent output is at most this share
// of `maxBufferedBytes`, polling every SNAPSHOT_DRAIN_POLL_MS; a reader that does not get there within
// the idle timeout is closed as a slow reader.
const SNAPSHOT_LOW_WATER_SHARE = 0.5;
const SNAPSHOT_DRAIN_POLL_MS = 2;
// Signals (WebRTC offers, answers, ICE candidates) a connection may send per second, and in a burst:
// a handful per peer and negotiation, so these leave ample room and still bound what one client can
// make the relay forward to the others.
const SIGNALS_PER_SECOND = 20;
const SIGNAL_BURST = 60;

/** A snapshot upload in progress on one connection (parts 0 .. next - 1 received). */
// Live push frames by the commits array the hub pushed: every connection of a space that did not send
// those commits gets the same array, so the frame is encoded once. Weak: a frame lives as long as its
// array, i.e. one fan-out.
const PUSH_FRAMES = new WeakMap<Uint8Array[], Uint8Array>();

/**
 * One relay connection to one space, as a state machine over decoded frames: `hello` first, then
 * `pull`, `commits`, `snapshot-put`, `snapshot-get`, `ping` in any order (PROTOCOL.md, "Relay
 * behaviour"). Frames are handled one at a time in arrival order, so replies keep the order of
 * requests. A snapshot upload is buffered per connection until its last part (`SnapshotUpload`), then
 * stored in one durable write (PROTOCOL.md, "Snapshots"). A frame that breaks the protocol gets a fatal
 * `error` frame and a close; other sessions are unaffected.
 *
 * (One state machine over every frame type, its limits and its timers, so one file past 400 lines; the
 * parts that stand alone, snapshot upload buffering, rates, budgets, live in their own files.)
 *
 * @example
 * const session = new RelaySession({ space, socket, store, hub, metrics, limits, log });
 * ws.on("message", (data) => session.receive(data));
 * ws.on("close", () => session.closed());
 */
export class RelaySession implements HubMember {
  readonly space: string;
  readonly #spaceBytes: Uint8Array;
  readonly #deps: SessionDeps;
  readonly #rate: RateLimiter;
  readonly #signalRate = new RateLimiter(SIGNALS_PER_SECOND, SIGNAL_BURST);
  readonly #byteRate: ByteRate;
  readonly #spaceByteRate: ByteRate | undefined;
  /** Commits per second (signatures to verify), counted like bytes. */
  readonly #commitRate: ByteRate;
  #state: "awaiting-hello" | "open" | "closed" = "awaiting-hello";
  #device: string | undefined;
  #queue: Promise<void> = Promise.resolve();
  #lastActivity = Date.now();
  #idleTimer: ReturnType<typeof setTimeout> | undefined;
  #helloTimer: ReturnType<typeof setTimeout> | undefined;
  #cleaned = false;
  readonly #upload: SnapshotUpload;
  /**
   * The pages of a paged `pull` received so far, kept only for devices the store held when its first
   * page came (an entry for a device the relay does not hold changes nothing in the reply), so a client
   * cannot make the relay hold more entries than the space has devices.
   */
  #pullPages: { held: ReadonlySet<string>; since: Map<string, number> } | undefined;
  /** Replacements of damaged commits accepted on this connection (bounded per connection). */
  #replacements = 0;
  readonly #memberships: SpaceMemberships;

  constructor(deps: SessionDeps) {
    this.#deps = deps;
    this.space = deps.space;
    this.#memberships = deps.memberships ?? new SpaceMemberships(deps.store);
    this.#spaceBytes = fromHex(deps.space, 16);
    this.#rate = new RateLimiter(deps.limits.messagesPerSecond, deps.limits.messageBurst);
    // Bursts of a few frames pass at once (a reconnect's uploads); the sustained rate is what is bounded.
    this.#byteRate = new ByteRate(
      deps.limits.connectionBytesPerSecond,
      byteBurst(deps.limits.connectionBytesPerSecond, deps.limits),
    );
    this.#spaceByteRate = deps.spaceRates?.acquire(deps.space);
    this.#commitRate = new ByteRate(
      deps.limits.connectionCommitsPerSecond,
      2 * deps.limits.connectionCommitsPerSecond,
    );
    this.#upload = new SnapshotUpload({
      maxBytes: deps.limits.maxSnapshotBytes,
      stallMs: deps.limits.idleTimeoutMs,
      budget: deps.uploadBudget,
      hooks: {
        refuse: (message, reason) => {
          if (reason !== "too-large") deps.metrics.refused(reason);
          deps.metrics.snapshotRefused("too-large");
          this.#send({ type: "error", code: "too-large", message, fatal: false });
        },
      },
    });
    deps.metrics.connectionOpened(deps.space);
    // Joined at once (not after hello) so the per-space connection limit and shutdown see every socket.
    deps.hub.join(this);
    this.#helloTimer = unrefTimer(
      setTimeout(
        () => this.#closeWith(CLOSE_CODES.policyViolation, "no hello", "no-hello"),
        deps.limits.helloTimeoutMs,
      ),
    );
    this.#armIdle(deps.limits.idleTimeoutMs);
  }

  /** Feeds one received WebSocket message (binary as ArrayBuffer or Uint8Array; text as string). */
  receive(data: ArrayBuffer | Uint8Array | string): void {
    if (this.#state === "closed") return;
    this.touch();
    if (!this.#rate.take()) {
      this.#fail("rate-limited", "rate-limited", "Too many frames per second.", CLOSE_CODES.policyViolation);
      return;
    }
    // A text frame is refused anyway; its length in UTF-16 units is close enough to charge it.
    this.#throttle(typeof data === "string" ? data.length : data.byteLength);
    // Commits are charged as they are read, like bytes: a frame still waiting behind earlier ones (on
    // a verify worker, or the store) must not let the connection read ahead of its commit rate.
    if (typeof data !== "string" && this.#state === "open")
      this.#throttleCommits(commitCountOf(data instanceof Uint8Array ? data : new Uint8Array(data)));
    // Arrival time, for the ack latency: frames queue behind each other, and that wait counts.
    const receivedAt = performance.now();
    this.#queue = this.#queue.then(() => this.#handleFrame(data, receivedAt));
  }

  /**
   * Charges a received message to the connection's and the space's byte budgets and, when either is
   * in debt, stops reading the socket until it is not: the sender is slowed by TCP, not cut off.
   */
  #throttle(bytes: number): void {
    const own = this.#byteRate.take(bytes);
    const space = this.#spaceByteRate?.take(bytes) ?? 0;
    if (own === 0 && space === 0) return;
    this.#deps.metrics.refused(own >= space ? "connection-bytes-rate" : "space-bytes-rate");
    this.#deps.socket.pauseReading?.(Math.max(own, space));
  }

  /**
   * Charges uploaded commits to the connection's commit budget (each costs the relay a signature
   * verification) and, in debt, stops reading the socket until it is not. This frame is still served.
   */
  #throttleCommits(count: number): void {
    if (count === 0) return;
    const wait = this.#commitRate.take(count);
    if (wait === 0) return;
    this.#deps.metrics.refused("connection-commits-rate");
    this.#deps.socket.pauseReading?.(wait);
  }

  /** Records liveness (any frame, or a WebSocket pong), postponing the idle close. */
  touch(): void {
    this.#lastActivity = Date.now();
  }

  /** Live fan-out from the hub: commits another connection of this space just stored. */
  push(commits: Uint8Array[]): void {
    if (this.#state !== "open") return;
    // The hub hands the same array to every connection of the space that did not send it: encode once.
    let frame = PUSH_FRAMES.get(commits);
    if (!frame) {
      frame = this.#encode({ type: "commits", space: this.#spaceBytes, commits, more: false, reply: false });
      PUSH_FRAMES.set(commits, frame);
    }
    if (!this.#sendFrame(frame)) return;
    this.#deps.metrics.commitsOut += commits.length;
    this.#deps.metrics.commitBytesOut += commits.reduce((n, c) => n + c.length, 0);
  }

  /** A signal frame from another connection of this space (see `SpaceHub.signal`). */
  signal(to: string | null, frame: Uint8Array): SignalOutcome {
    if (this.#state !== "open" || (to !== null && to !== this.#device)) return "not-addressed";
    // Signals are best effort: a reader that does not keep up loses them rather than its connection.
    if (this.#deps.socket.bufferedAmount() > this.#deps.limits.maxBufferedBytes) return "slow-reader";
    this.#deps.socket.send(frame);
    return "delivered";
  }

  /** Closes the connection from the relay side (shutdown, hub, a removal of its device). */
  close(code: number, reason: string): void {
    const metric =
      code === CLOSE_CODES.goingAway ? "shutdown" : code === REMOVED_CLOSE.code ? "removed" : "closed";
    this.#closeWith(code, reason, metric);
  }

  /** Whether this connection is `device`'s: the one it proved, or the one its `hello` named. */
  speaksFor(device: string): boolean {
    return device === this.#deps.device || device === this.#device;
  }

  /** The socket closed (either side): releases timers and leaves the hub. */
  closed(): void {
    this.#state = "closed";
    this.#cleanup();
  }

  async #handleFrame(data: ArrayBuffer | Uint8Array | string, receivedAt: number): Promise<void> {
    if (this.#state === "closed") return;
    const { limits } = this.#deps;
    if (typeof data === "string") {
      this.#fail("text-frame", "protocol", "Only binary frames are allowed.", CLOSE_CODES.unsupportedData);
      return;
    }
    const bytes = data instanceof Uint8Array ? data : new Uint8Array(data);
    let m: Message;
    try {
      m = decodeMessage(bytes, { maxFrameBytes: limits.maxFrameBytes });
    } catch (e) {
      if (!(e instanceof ProtocolError)) throw e;
      if (e.reason === "unknown-version") {
        this.#refuseVersion(e.reason, e.message);
        return;
      }
      const [code, close]: [ErrorCodeName, number] =
        e.reason === "oversized"
          ? ["too-large", CLOSE_CODES.messageTooBig]
          : ["protocol", CLOSE_CODES.protocolError];
      this.#fail(e.reason, code, e.message, close);
      return;
    }
    try {
      await this.#handleMessage(m, receivedAt);
    } catch (e) {
      if (e instanceof ProtocolError) {
        this.#fail(e.reason, "protocol", e.message, CLOSE_CODES.protocolError);
        return;
      }
      this.#deps.log("session.internal-error", {
        space: this.space,
        error: e instanceof Error ? e.name : "unknown",
      });
      this.#fail("internal", "internal", "The relay failed to handle this frame.", CLOSE_CODES.internalError);
    }
  }

  async #handleMessage(m: Message, receivedAt: number): Promise<void> {
    if (this.#state === "awaiting-hello" && m.type !== "hello") {
      this.#fail("unexpected-type", "protocol", "The first frame must be hello.", CLOSE_CODES.protocolError);
      return;
    }
    switch (m.type) {
      case "hello":
        return this.#onHello(m.minVersion, m.maxVersion, m.device);
      case "pull":
        if (!this.#sameSpace(m.space)) return;
        return this.#onPull(m.vector, m.maxBytes, m.more === true);
      case "commits":
        if (!this.#sameSpace(m.space)) return;
        return m.replace ? this.#onReplace(m.commits, receivedAt) : this.#onCommits(m.commits, receivedAt);
      case "snapshot-put":
        if (!this.#sameSpace(m.space)) return;
        return this.#onSnapshotPut(m);
      case "snapshot-get":
        if (!this.#sameSpace(m.space)) return;
        return this.#onSnapshotGet();
      case "signal":
        if (!this.#sameSpace(m.space)) return;
        return this.#onSignal(m);
      case "ping":
        this.#send({ type: "pong", nonce: m.nonce });
        return;
      case "pong":
        return;
      case "error":
        this.#deps.log("session.peer-error", { space: this.space, device: this.#device, code: m.code });
        if (m.fatal) this.#closeWith(CLOSE_CODES.normal, "peer error", "peer-error");
        return;
      default:
        this.#fail(
          "unexpected-type",
          "protocol",
          `A client may not send ${m.type}.`,
          CLOSE_CODES.protocolError,
        );
    }
  }

  async #onHello(minVersion: number, maxVersion: number, device: Uint8Array): Promise<void> {
    if (this.#state !== "awaiting-hello") {
      this.#fail("unexpected-type", "protocol", "hello was already received.", CLOSE_CODES.protocolError);
      return;
    }
    const version = Math.min(maxVersion, PROTOCOL_VERSION);
    if (version < Math.max(minVersion, MIN_PROTOCOL_VERSION)) {
      const range = `${MIN_PROTOCOL_VERSION}..${PROTOCOL_VERSION}`;
      this.#refuseVersion("version-mismatch", `No common protocol version (relay speaks ${range}).`);
      return;
    }
    clearTimeout(this.#helloTimer);
    this.#device = toHex(device);
    const stored = await this.#deps.store.vector(this.space);
    const vector: VectorEntry[] = [...stored].map(([d, seq]) => ({ device: fromHex(d, 16), seq }));
    // A space may have any number of devices: the vector goes out in pages, the last one without `more`.
    const pages = vectorPages(vector);
    for (const [i, page] of pages.entries()) {
      // Like snapshot parts: a later page waits for a reader that is behind, rather than closing it.
      if (i > 0 && !(await this.#drained())) return;
      // The state may have changed while the store answered (TypeScript cannot see that across await).
      if ((this.#state as string) === "closed") return;
      const last = i === pages.length - 1;
      // `push` ignores the hub until the last page, so no live push can come inside the welcome; a
      // commit stored while the vector was read is in the store and reaches the client through a pull.
      if (last) this.#state = "open";
      if (!this.#send({ type: "welcome", version, vector: page, more: !last })) return;
    }
    this.#deps.log("session.open", { space: this.space, device: this.#device, version });
  }

  async #onPull(vector: VectorEntry[], maxBytes: number, more: boolean): Promise<void> {
    if (more || this.#pullPages) {
      // A paged pull: keep this page and answer only the last one, for the whole vector.
      this.#pullPages ??= {
        held: new Set((await this.#deps.store.vector(this.space)).keys()),
        since: new Map(),
      };
      const { held, since } = this.#pullPages;
      for (const e of vector) {
        const d = toHex(e.device);
        if (held.has(d)) since.set(d, e.seq);
      }
      if (more) return;
      this.#pullPages = undefined;
      return this.#answerPull(since, maxBytes);
    }
    return this.#answerPull(new Map(vector.map((e) => [toHex(e.device), e.seq])), maxBytes);
  }

  async #answerPull(since: ReadonlyMap<string, number>, maxBytes: number): Promise<void> {
    const budget = Math.min(maxBytes, this.#deps.limits.maxFrameBytes - COMMITS_FRAME_OVERHEAD);
    const r = await this.#deps.store.read(this.space, since, {
      maxBytes: budget,
      maxCount: MAX_COMMITS_PER_BATCH,
    });
    this.#sendCommits(r.commits, r.more, true);
  }

  async #onCommits(commits: Uint8Array[], receivedAt: number): Promise<void> {
    const { metrics } = this.#deps;
    const deps = { ...this.#deps, memberships: this.#memberships };
    await storeUpload(deps, this.space, commits, {
      from: this,
      // Acked (and the refusal named) before the commits go out, and before a removal among them can
      // close this very connection (a device leaving).
      answer: ({ heads, refused }) => {
        const entries = [...heads].map(([d, seq]) => ({ device: fromHex(d, 16), seq }));
        if (this.#send({ type: "ack", space: this.#spaceBytes, entries }))
          metrics.acked(performance.now() - receivedAt);
        if (!refused) return;
        const { code, message, device, seq } = refused;
        this.#send({ type: "error", code, message, fatal: false, device: fromHex(device, 16), seq });
      },
    });
  }

  /**
   * Replaces commits the relay stored damaged with their author's intact copies (PROTOCOL.md section 5,
   * "Replacing a damaged upload"), each under the store's replace rule, at most
   * `MAX_REPLACEMENTS_PER_CONNECTION` per connection. Acks the device's head for each one replaced (or
   * already identical), pushes the replacements live, and stops at the first refusal with a non-fatal
   * `error` naming it, as for uploads. A replacement whose signature does not verify is refused with
   * `signature`, like an upload.
   */
  async #onReplace(commits: Uint8Array[], receivedAt: number): Promise<void> {
    const { store, metrics, hub, log } = this.#deps;
    const heads = new Map<string, number>();
    const replaced: Uint8Array[] = [];
    // A replacement is verified like an upload: with the author key part of the compared header
    // (`replaceRule`), only the device that signed the stored commit can replace it.
    const { verified, refused: unsigned } = verifiedPrefix(commits);
    let refused: Refusal | undefined;
    for (const c of verified) {
      if (c.membershipOp !== undefined) {
        // The log keeps the operation a membership commit was stored with: it is not swapped later.
        const message = "A membership commit cannot be replaced.";
        refused = { metric: "membership", code: "membership", message, device: c.device, seq: c.seq };
        break;
      }
      if (this.#replacements >= MAX_REPLACEMENTS_PER_CONNECTION) {
        const message = `At most ${MAX_REPLACEMENTS_PER_CONNECTION} replacements per connection.`;
        refused = { metric: "rate-limited", code: "rate-limited", message, device: c.device, seq: c.seq };
        break;
      }
      if (c.device !== this.#device) {
        // Only the author replaces: the connection that said hello as that device.
        const message = "Only the connection of the commit's own device may replace it.";
        refused = { metric: "conflict", code: "conflict", message, device: c.device, seq: c.seq };
        break;
      }
      const { verdict, head } = await store.replace(this.space, c);
      if (verdict === "replaced" || verdict === "duplicate") {
        heads.set(c.device, head);
        if (verdict === "duplicate") continue;
        this.#replacements += 1;
        replaced.push(c.bytes);
        log("session.replaced", { space: this.space, device: c.device, seq: c.seq });
        continue;
      }
      const message = REPLACE_REFUSAL_MESSAGES[verdict];
      refused = { metric: verdict, code: verdict, message, device: c.device, seq: c.seq };
      break;
    }
    refused ??= unsigned;
    const entries = [...heads].map(([d, seq]) => ({ device: fromHex(d, 16), seq }));
    if (this.#send({ type: "ack", space: this.#spaceBytes, entries }))
      metrics.acked(performance.now() - receivedAt);
    if (refused) {
      const { metric, code, message, device, seq } = refused;
      metrics.commitRefused(metric);
      this.#send({ type: "error", code, message, fatal: false, device: fromHex(device, 16), seq });
    }
    hub.publish(this, replaced);
  }

  /**
   * Forwards a signal to the other connections of this space (PROTOCOL.md, "Signalling"): never stored,
   * never opened. `from` must be this connection's own device, so a device cannot speak for another.
   */
  #onSignal(m: SignalMessage): void {
    const { hub, metrics } = this.#deps;
    if (toHex(m.from) !== this.#device) {
      this.#fail(
        "signal-from",
        "protocol",
        "A signal must come from the device that sent hello.",
        CLOSE_CODES.protocolError,
      );
      return;
    }
    if (!this.#signalRate.take()) {
      metrics.signalDropped("rate-limited");
      return;
    }
    const to = m.to.every((b) => b === 0) ? null : toHex(m.to);
    // Re-encoded rather than forwarded as received: what leaves the relay is always a well-formed frame.
    const frame = encodeMessage(m, { maxFrameBytes: this.#deps.limits.maxFrameBytes });
    const { delivered, slow } = hub.signal(this, to, frame);
    metrics.signalsForwarded += delivered;
    for (let i = 0; i < slow; i++) metrics.signalDropped("slow-reader");
    if (delivered === 0 && slow === 0) metrics.signalDropped("no-peer");
  }

  async #onSnapshotPut(m: SnapshotPutMessage): Promise<void> {
    this.#deps.metrics.snapshotBytesIn += m.bytes.length;
    const step = this.#upload.take(m);
    if (step.kind === "out-of-order") {
      this.#fail(
        "snapshot-sequence",
        "protocol",
        "Snapshot parts must arrive in order, each with the same parts count and vector as part 0.",
        CLOSE_CODES.protocolError,
      );
      return;
    }
    if (step.kind !== "complete") return;
    try {
      await this.#storeSnapshot(m, step.blob);
    } finally {
      step.release();
    }
  }

  async #storeSnapshot(m: SnapshotPutMessage, blob: Uint8Array): Promise<void> {
    const { store, metrics, limits, log } = this.#deps;
    // A snapshot of a space pinned to another region is not stored either (PROTOCOL.md 5, "Residency").
    const { state } = await this.#memberships.view(this.space);
    const pinned = state?.residency;
    if (pinned !== undefined && pinned !== this.#deps.region) {
      metrics.refused("residency");
      const message = `This space is pinned to region "${pinned}": its snapshot is not stored here.`;
      this.#send({ type: "error", code: "residency", message, fatal: false });
      return;
    }
    // In a space with members only an admin's device stores a snapshot (a compacted one, PROTOCOL.md 12):
    // another member's would replace the base fresh devices start from, which they then refuse. The
    // device is the proven one; a connection opened before the space had members proved none, and is
    // taken for the device its hello named (it held the token then).
    const who = this.#deps.device ?? this.#device ?? "";
    if (state && state.members.get(state.deviceOwner.get(who) ?? "")?.role !== "admin") {
      metrics.refused("snapshot-not-admin");
      const message = "Only an admin's device stores a snapshot of a space with members.";
      this.#send({ type: "error", code: "membership", message, fatal: false });
      return;
    }
    const vector = new Map(m.vector.map((e) => [toHex(e.device), e.seq]));
    const verdict = await store.putSnapshot(this.space, vector, blob, {
      quotaBytes: limits.quotaBytesPerSpace,
    });
    if (verdict === "stored") {
      metrics.snapshotsStored += 1;
      log("session.snapshot-stored", { space: this.space, device: this.#device, bytes: blob.length });
      this.#send({ type: "snapshot-stored", space: this.#spaceBytes, vector: m.vector });
      return;
    }
    const code = SNAPSHOT_REFUSAL_CODES[verdict];
    metrics.snapshotRefused(code);
    this.#send({ type: "error", code, message: SNAPSHOT_REFUSAL_MESSAGES[verdict], fatal: false });
  }

  async #onSnapshotGet(): Promise<void> {
    const { store, metrics, limits } = this.#deps;
    const snapshot = await store.getSnapshot(this.space);
    if (!snapshot) {
      this.#send({
        type: "snapshot",
        space: this.#spaceBytes,
        vector: [],
        part: 0,
        parts: 0,
        bytes: new Uint8Array(0),
      });
      return;
    }
    const vector = [...snapshot.vector].map(([d, seq]) => ({ device: fromHex(d, 16), seq }));
    const partBytes = maxSnapshotPartBytes(vector.length, limits.maxFrameBytes);
    const parts = Math.max(1, Math.ceil(snapshot.bytes.length / partBytes));
    if (partBytes < 1 || parts > MAX_SNAPSHOT_PARTS) {
      throw new Error(`The stored snapshot does not fit ${MAX_SNAPSHOT_PARTS} frames.`);
    }
    for (let part = 0; part < parts; part++) {
      if (!(await this.#drained())) return;
      const bytes = snapshot.bytes.subarray(part * partBytes, (part + 1) * partBytes);
      if (!this.#send({ type: "snapshot", space: this.#spaceBytes, vector, part, parts, bytes })) return;
      metrics.snapshotBytesOut += bytes.length;
    }
    metrics.snapshotsServed += 1;
  }

  /**
   * Waits until the socket's unsent output is low enough for the next snapshot part. False when the
   * session closed meanwhile, or when the reader did not catch up within the idle timeout (it is then
   * closed as a slow reader, like a reader that lets a push overflow `maxBufferedBytes`).
   */
  async #drained(): Promise<boolean> {
    const { socket, limits } = this.#deps;
    const lowWater = limits.maxBufferedBytes * SNAPSHOT_LOW_WATER_SHARE;
    const deadline = Date.now() + limits.idleTimeoutMs;
    while (this.#state !== "closed" && socket.bufferedAmount() > lowWater) {
      if (Date.now() >= deadline) {
        this.#closeWith(CLOSE_CODES.policyViolation, "slow reader", "slow-reader");
        return false;
      }
      await new Promise((resolve) => setTimeout(resolve, SNAPSHOT_DRAIN_POLL_MS));
    }
    return this.#state !== "closed";
  }

  #sameSpace(space: Uint8Array): boolean {
    if (bytesEqual(space, this.#spaceBytes)) return true;
    this.#fail("wrong-space", "protocol", "This connection serves another space.", CLOSE_CODES.protocolError);
    return false;
  }

  #sendCommits(commits: Uint8Array[], more: boolean, reply: boolean): void {
    if (!this.#send({ type: "commits", space: this.#spaceBytes, commits, more, reply })) return;
    this.#deps.metrics.commitsOut += commits.length;
    this.#deps.metrics.commitBytesOut += commits.reduce((n, c) => n + c.length, 0);
  }

  #send(m: Message): boolean {
    if (this.#state === "closed") return false;
    return this.#sendFrame(this.#encode(m));
  }

  #encode(m: Message): Uint8Array {
    return encodeMessage(m, { maxFrameBytes: this.#deps.limits.maxFrameBytes });
  }

  #sendFrame(frame: Uint8Array): boolean {
    if (this.#state === "closed") return false;
    if (this.#deps.socket.bufferedAmount() > this.#deps.limits.maxBufferedBytes) {
      // The client does not read fast enough; dropping frames would break its ordering, so close it.
      this.#closeWith(CLOSE_CODES.policyViolation, "slow reader", "slow-reader");
      return false;
    }
    this.#deps.socket.send(frame);
    return true;
  }

  /**
   * Refuses a protocol version with a fatal `error version` in the frame version of `hello`, which
   * every version can read (PROTOCOL.md section 8), then closes.
   */
  #refuseVersion(reason: string, message: string): void {
    this.#deps.metrics.frameRejected(reason);
    this.#deps.log("session.rejected", { space: this.space, device: this.#device, reason });
    if (this.#state !== "closed") this.#deps.socket.send(encodeVersionRefusal(message));
    this.#closeWith(CLOSE_CODES.protocolError, reason, reason);
  }

  #fail(reason: string, code: ErrorCodeName, message: string, closeCode: number): void {
    this.#deps.metrics.frameRejected(reason);
    this.#deps.log("session.rejected", { space: this.space, device: this.#device, reason });
    this.#send({ type: "error", code, message, fatal: true });
    this.#closeWith(closeCode, reason, reason);
  }

  #closeWith(code: number, reason: string, metric: string): void {
    if (this.#state === "closed") return;
    this.#state = "closed";
    this.#deps.metrics.closedBy(metric);
    this.#cleanup();
    this.#deps.socket.close(code, reason);
  }

  #armIdle(delay: number): void {
    this.#idleTimer = unrefTimer(
      setTimeout(() => {
        const idle = Date.now() - this.#lastActivity;
        const limit = this.#deps.limits.idleTimeoutMs;
        if (idle >= limit) this.#closeWith(CLOSE_CODES.normal, "idle timeout", "idle");
        else this.#armIdle(limit - idle);
      }, delay),
    );
  }

  #cleanup(): void {
    if (this.#cleaned) return;
    this.#cleaned = true;
    clearTimeout(this.#helloTimer);
    clearTimeout(this.#idleTimer);
    this.#upload.drop();
    this.#deps.spaceRates?.release(this.space);
    this.#deps.hub.leave(this);
    this.#deps.metrics.connectionClosed(this.space);
    this.#deps.log("session.closed", { space: this.space, device: this.#device });
  }
}
