import { ProtocolError, ShoalError } from "../errors.ts";
import { byMembership } from "../sealing/by-membership.ts";
import {
  DEFAULT_LIMITS,
  MAX_COMMITS_PER_BATCH,
  MIN_PROTOCOL_VERSION,
  PROTOCOL_VERSION,
  bytesEqual,
  decodeMessage,
  encodeMessage,
  fromHex,
  toHex,
  vectorPages,
  type ErrorCodeName,
  type Message,
  type VectorEntry,
} from "../protocol/index.ts";
import { asStorageError } from "../replica/quota.ts";
import type { DeviceId, SpaceId } from "../types.ts";
import type { OpenedCommit } from "../sealing/sealer.ts";
import type { TransportConnection, TransportHandlers } from "../transports/transport.ts";
import { missingCommits } from "./missing-commits.ts";
import { openAndApply, type UploadTarget } from "./open-and-apply.ts";
import { peerRefusalFrame, peerRefusalIn, type PeerRefusal } from "./peer-admission.ts";
import type { PeerReplica } from "./peer-replica.ts";
import type { PeerResponderHooks, PeerTraffic } from "./peer-responder-hooks.ts";
import type { PeerSealer } from "./peer-sealer.ts";

/** Room left in a frame for everything but the commits (version, type, space, flags, count, lengths). */
const FRAME_BUDGET = DEFAULT_LIMITS.maxFrameBytes - 4 * MAX_COMMITS_PER_BATCH - 64;
/**
 * Most entries of a peer's (paged) `pull` kept for devices this replica does not hold: they only spare
 * duplicate pushes later, so beyond this cap they are dropped rather than held.
 */
const MAX_FOREIGN_PULL_ENTRIES = 100_000;
/** Live pushes stop while this much is still unsent on the link, and resume shortly after. */
const PUSH_WINDOW = 1024 * 1024;
/** Delay before pushing again after the window was full (there is no "drained" event on the port). */
const PUSH_RETRY_MS = 20;

/**
 * Answers the Shoal protocol for one peer device over one link (a WebRTC data channel), from this
 * replica, the way the relay answers a client (PROTOCOL.md section 5): `hello` -> `welcome` with this
 * replica's vector, `pull` -> one `commits` reply from the sealed commits (causal order, within the
 * requested bytes), uploaded `commits` -> opened with the space's key and chain-checked exactly as a
 * `SpaceSession` checks what the relay sends, applied, kept sealed, then `ack`ed with what this replica
 * now holds; and once the peer has pulled, every commit this replica gains (its own or from anyone)
 * is pushed to the peer live. The peer is as untrusted as the relay: a commit that does not open is
 * refused and reported, the others go on.
 *
 * With `admit`, the peer's device is checked against this device's membership log before anything of
 * the space goes out or comes in (its hello, each pull, upload and push): once it is refused (removed,
 * or not a member), the link gets one fatal `membership` error and closes (PROTOCOL.md 10, "Peer
 * links"). A peer's own such refusal of this device ends the link as `refused`, with an `AccessDenied`.
 *
 * @example
 * const responder = new PeerResponder({ space, peer, replica, sealer, hooks,
 *   connect: (handlers) => openDataChannelLink(channel, handlers) });
 * responder.start();
 * db.live(() => db.vector()).subscribe(() => responder.poke());
 */
export class PeerResponder {
  readonly space: SpaceId;
  readonly peer: DeviceId;
  readonly #spaceBytes: Uint8Array;
  readonly #replica: PeerReplica;
  readonly #sealer: PeerSealer;
  readonly #hooks: PeerResponderHooks;
  readonly #connect: (handlers: TransportHandlers) => TransportConnection;
  readonly #admit: (() => Promise<PeerRefusal | undefined>) | undefined;
  #conn: TransportConnection | null = null;
  #state: "idle" | "awaiting-hello" | "open" | "closed" = "idle";
  #work: Promise<void> = Promise.resolve();
  /** Per device: the highest seq the peer is known to hold (its pulls, its uploads, what we pushed). */
  readonly #peerHas = new Map<string, number>();
  /** The peer pulled until caught up at least once: from then on new commits are pushed to it. */
  #caughtUp = false;
  #pushTimer: ReturnType<typeof setTimeout> | null = null;
  /**
   * The pages of a paged `pull` so far, kept only for devices this replica holds (no other entry
   * changes the reply), so a peer cannot make it hold more entries than the space has devices here.
   */
  #pullPages: Record<string, number> | undefined;
  readonly #traffic: PeerTraffic = { framesIn: 0, framesOut: 0, commitsSent: 0, commitsReceived: 0 };
  /** What an upload is opened with and reported to (`openAndApply`). */
  readonly #upload: UploadTarget;

  constructor(opts: {
    space: SpaceId;
    peer: DeviceId;
    replica: PeerReplica;
    sealer: PeerSealer;
    hooks: PeerResponderHooks;
    connect: (handlers: TransportHandlers) => TransportConnection;
    /** Why the peer's device may not sync this space with this device now (undefined: it may). */
    admit?: () => Promise<PeerRefusal | undefined>;
  }) {
    this.space = opts.space;
    this.peer = opts.peer;
    this.#spaceBytes = fromHex(opts.space, 16);
    this.#replica = opts.replica;
    this.#sealer = opts.sealer;
    this.#hooks = opts.hooks;
    this.#connect = opts.connect;
    this.#admit = opts.admit;
    this.#upload = {
      sealer: opts.sealer,
      replica: opts.replica,
      error: (e) => this.#hooks.error(e),
      received: (count) => {
        this.#traffic.commitsReceived += count;
      },
      peerHas: (device, seq) => this.#notePeerHas(device, seq),
    };
  }

  /** Counts so far (frames, commits): for status and tests. */
  get traffic(): Readonly<PeerTraffic> {
    return { ...this.#traffic };
  }

  /** Takes the link and waits for the peer's `hello`. */
  start(): void {
    if (this.#state !== "idle") return;
    this.#state = "awaiting-hello";
    this.#hooks.state("connecting");
    let conn: TransportConnection | null = null;
    conn = this.#connect({
      onOpen: () => {},
      onMessage: (frame) => {
        if (this.#state === "closed" || conn !== this.#conn) return;
        this.#traffic.framesIn++;
        let m: Message;
        try {
          m = decodeMessage(frame);
        } catch (e) {
          this.#fail("protocol", (e as Error).message);
          return;
        }
        // The peer's refusal of this device (any time, even before a hello is answered) is taken at
        // once, not queued: the channel's close follows right behind it and would be taken first.
        const refused = peerRefusalIn(m);
        if (refused) {
          this.#hooks.error(refused);
          this.#close("refused", refused.message);
          return;
        }
        this.#enqueue(() => this.#handle(m));
      },
      onClose: (reason) => {
        if (this.#state === "closed") return;
        this.#state = "closed";
        this.#conn = null;
        this.#clearPush();
        this.#hooks.state("offline", reason);
      },
    });
    this.#conn = conn;
  }

  /** Closes the link (the peer sees the channel close). */
  stop(): void {
    this.#close("offline", "stopped");
  }

  #close(state: "offline" | "refused", detail: string): void {
    if (this.#state === "closed") return;
    this.#state = "closed";
    this.#clearPush();
    const conn = this.#conn;
    this.#conn = null;
    conn?.close(detail);
    this.#hooks.state(state, detail);
  }

  /** This replica may hold commits the peer lacks: push them (once the peer has caught up by pulling). */
  poke(): void {
    this.#enqueue(() => this.#push());
  }

  #enqueue(job: () => Promise<void>): void {
    this.#work = this.#work.then(job).catch((err) => {
      if (this.#state === "closed") return;
      const e = asStorageError(err);
      this.#hooks.error(
        e instanceof ShoalError
          ? e
          : new ShoalError("SyncError", String((e as Error)?.message ?? e), { cause: e }),
      );
      // Storage failed while answering: drop the link, the peers negotiate again and resume from vectors.
      this.#fail("internal", "The peer failed to handle a frame.");
    });
  }

  #send(m: Message): void {
    if (this.#state === "closed" || !this.#conn) return;
    this.#conn.send(encodeMessage(m));
    this.#traffic.framesOut++;
    this.#hooks.traffic?.(this.traffic);
  }

  /** A fatal `error` frame, then the link closes (as the relay does for a protocol violation). */
  #fail(code: ErrorCodeName, message: string): void {
    this.#send({ type: "error", code, message, fatal: true });
    this.#hooks.error(new ProtocolError("bad-field", `Peer ${this.peer.slice(0, 8)}: ${message}`));
    this.stop();
  }

  /**
   * Whether the peer's device is still admitted; if not, refuses the link (one fatal `membership`
   * error, then closed) and returns false. Runs in the link's queue, so nothing is sent after it.
   */
  async #admitted(): Promise<boolean> {
    const refusal = this.#admit && (await this.#admit());
    if (!refusal) return true;
    this.refuse(refusal);
    return false;
  }

  /** Refuses the peer's device: a fatal `membership` error frame, then the link closes. */
  refuse(refusal: PeerRefusal): void {
    if (this.#state === "closed" || !this.#conn) return;
    this.#conn.send(peerRefusalFrame(refusal));
    this.#traffic.framesOut++;
    this.#close("offline", `refused the peer (${refusal})`);
  }

  async #handle(m: Message): Promise<void> {
    if (this.#state === "closed") return;
    if (this.#state === "awaiting-hello" && m.type !== "hello")
      return this.#fail("protocol", "The first frame must be hello.");
    switch (m.type) {
      case "hello":
        return this.#onHello(m.minVersion, m.maxVersion, m.device);
      case "pull":
        if (!this.#sameSpace(m.space)) return;
        return this.#onPull(m.vector, m.maxBytes, m.more === true);
      case "commits":
        if (!this.#sameSpace(m.space)) return;
        return this.#onCommits(m.commits);
      case "snapshot-get":
        // Peers keep no snapshots: "none", and the peer pulls commits instead.
        this.#send({
          type: "snapshot",
          space: this.#spaceBytes,
          vector: [],
          part: 0,
          parts: 0,
          bytes: new Uint8Array(0),
        });
        return;
      case "snapshot-put":
        // Not stored here; `stale-snapshot` is the answer a publishing session takes as "keep going".
        this.#send({
          type: "error",
          code: "stale-snapshot",
          message: "Peers do not store snapshots.",
          fatal: false,
        });
        return;
      case "ping":
        this.#send({ type: "pong", nonce: m.nonce });
        return;
      case "pong":
        return;
      case "error":
        this.#hooks.error(new ShoalError(`Peer:${m.code}`, `The peer reported: ${m.message}`));
        if (m.fatal) this.stop();
        return;
      default:
        return this.#fail("protocol", `A peer client may not send ${m.type}.`);
    }
  }

  #sameSpace(space: Uint8Array): boolean {
    if (bytesEqual(space, this.#spaceBytes)) return true;
    this.#fail("protocol", "This link serves another space.");
    return false;
  }

  async #onHello(minVersion: number, maxVersion: number, device: Uint8Array): Promise<void> {
    if (this.#state !== "awaiting-hello") return this.#fail("protocol", "hello was already received.");
    const version = Math.min(maxVersion, PROTOCOL_VERSION);
    if (version < Math.max(minVersion, MIN_PROTOCOL_VERSION))
      return this.#fail("version", "No common protocol version.");
    // The link was negotiated with this device through signals sealed with the space key; a hello
    // naming another device is a confused or hostile peer.
    if (toHex(device) !== this.peer)
      return this.#fail("unauthorized", "hello names another device than the one signalled.");
    if (!(await this.#admitted())) return;
    const vector = await this.#ownVector();
    if ((this.#state as string) === "closed") return;
    this.#state = "open";
    // Any number of devices: the vector goes in pages, the last one without `more` (as the relay does).
    const pages = vectorPages(Object.entries(vector).map(([d, seq]) => ({ device: fromHex(d, 16), seq })));
    pages.forEach((page, i) =>
      this.#send({ type: "welcome", version, vector: page, more: i < pages.length - 1 }),
    );
    this.#hooks.state("connected");
  }

  async #ownVector(): Promise<Record<string, number>> {
    return (await this.#replica.vector([this.space]))[this.space] ?? {};
  }

  #notePeerHas(device: string, seq: number): void {
    if ((this.#peerHas.get(device) ?? 0) < seq) this.#peerHas.set(device, seq);
  }

  async #onPull(vector: VectorEntry[], maxBytes: number, morePages: boolean): Promise<void> {
    if (!(await this.#admitted())) return;
    const held = await this.#ownVector();
    const since = (this.#pullPages ??= {});
    for (const e of vector) {
      const d = toHex(e.device);
      // What the peer holds of devices not held here matters only for later pushes: kept up to a cap.
      if (held[d] !== undefined || this.#peerHas.size < MAX_FOREIGN_PULL_ENTRIES) this.#notePeerHas(d, e.seq);
      if (held[d] !== undefined) since[d] = e.seq;
    }
    // A paged pull is answered once, after its last page, for the whole vector.
    if (morePages) return;
    this.#pullPages = undefined;
    const { commits, more, last } = await missingCommits(
      this.#replica,
      this.#sealer,
      this.space,
      since,
      Math.min(maxBytes, FRAME_BUDGET),
    );
    for (const [d, seq] of last) this.#notePeerHas(d, seq);
    this.#send({ type: "commits", space: this.#spaceBytes, commits, more, reply: true });
    this.#traffic.commitsSent += commits.length;
    if (!more) {
      this.#caughtUp = true;
      // Anything gained while the peer was pulling goes out now.
      await this.#push();
    }
  }

  /** Opens, checks, applies and keeps an upload, then acknowledges what this replica now holds. */
  async #onCommits(frames: Uint8Array[]): Promise<void> {
    // A refused device's upload is not even opened here (receivers would quarantine it anyway).
    if (!(await this.#admitted())) return;
    const opened: OpenedCommit[] = [];
    let refused = 0;
    // Membership commits first: a rotation among them brings the key the others may be sealed under.
    for (const group of byMembership(frames)) {
      const got = await openAndApply(group, this.#upload);
      opened.push(...got.opened);
      refused += got.refused;
    }
    // Ack, for every device of the upload, what this replica now holds of it (contiguously).
    const mine = await this.#ownVector();
    const devices = new Set(opened.map((o) => o.commit.device));
    const entries: VectorEntry[] = [...devices]
      .filter((d) => (mine[d] ?? 0) > 0)
      .map((d) => ({ device: fromHex(d, 16), seq: mine[d]! }));
    this.#send({ type: "ack", space: this.#spaceBytes, entries });
    if (refused > 0)
      this.#send({
        type: "error",
        code: "protocol",
        message: `${refused} commit(s) could not be opened and were refused.`,
        fatal: false,
      });
  }

  /** Live push of what the peer lacks, within the window; retried shortly when the link is busy. */
  async #push(): Promise<void> {
    if (this.#state !== "open" || !this.#caughtUp || !this.#conn) return;
    if (!(await this.#admitted())) return;
    for (;;) {
      if (this.#conn.bufferedAmount > PUSH_WINDOW) {
        this.#schedulePush();
        return;
      }
      const since = Object.fromEntries(this.#peerHas);
      const { commits, more, last } = await missingCommits(
        this.#replica,
        this.#sealer,
        this.space,
        since,
        FRAME_BUDGET,
      );
      if (commits.length === 0 || this.#state !== "open") return;
      for (const [d, seq] of last) this.#notePeerHas(d, seq);
      this.#send({ type: "commits", space: this.#spaceBytes, commits, more: false });
      this.#traffic.commitsSent += commits.length;
      if (!more) return;
    }
  }

  #schedulePush(): void {
    if (this.#pushTimer) return;
    this.#pushTimer = setTimeout(() => {
      this.#pushTimer = null;
      this.poke();
    }, PUSH_RETRY_MS);
  }

  #clearPush(): void {
    if (this.#pushTimer) clearTimeout(this.#pushTimer);
    this.#pushTimer = null;
  }
}
