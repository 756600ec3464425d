import type { Dexie } from "dexie";
import { ShoalError, ValidationError, type AccessDenied } from "../errors.ts";
import { randomBytes } from "../ids.ts";
import {
  MESSAGE_TYPE_BYTES,
  PROTOCOL_VERSION,
  SIGNAL_BROADCAST,
  bytesEqual,
  decodeMessage,
  encodeMessage,
  fromHex,
  toHex,
} from "../protocol/index.ts";
import type { SpaceRow } from "../replica/stored-rows.ts";
import {
  openDataChannelLink,
  webRtcTransport,
  type DataChannelLike,
} from "../transports/webrtc-transport.ts";
import type { DeviceId, SpaceId } from "../types.ts";
import { PeerGate, peerRefusalFrame, peerRefusalIn, type PeerRefusal } from "./peer-admission.ts";
import type { PeerReplica } from "./peer-replica.ts";
import { PeerResponder } from "./peer-responder.ts";
import { deriveSignalKey, openSignal, sealSignal, type SignalBody } from "./signal-seal.ts";
import { SpaceSealer } from "../sealing/sealer.ts";
import { SpaceSession, type Backoff, type SessionReplica } from "../sync/space-session.ts";
import type { TransportStatus } from "../status/sync-status.ts";
import type { Transport, TransportConnection, TransportHandlers } from "../transports/transport.ts";

// ---------------------------------------------------------------------------------------------------
// The peer network: discovery and negotiation through the relay, then one data channel per peer

/** What the peer network reports to the sync engine. */
export interface PeerNetworkHost {
  /** A peer connection's status (null: it is gone). `key` is stable per (space, peer device). */
  status(key: string, status: TransportStatus | null): void;
  error(error: ShoalError): void;
  /** A pull over a peer link found nothing more to fetch. */
  synced(space: SpaceId): void;
}

/** The minimal `RTCPeerConnection` constructor this module needs (the browser's fits). */
export type PeerConnectionConstructor = new (config: RTCConfiguration) => RTCPeerConnection;

/** Options of `PeerNetwork`. */
export interface PeerNetworkOptions {
  dexie: Dexie;
  replica: SessionReplica & PeerReplica;
  /** STUN/TURN servers; none by default (devices on one network reach each other by host candidates). */
  iceServers?: RTCIceServer[];
  /** Default `globalThis.RTCPeerConnection`. */
  RTCPeerConnection?: PeerConnectionConstructor;
  /** A negotiation whose channel is not open after this long is abandoned and tried again (default 15 s). */
  negotiationTimeoutMs?: number;
  /** Reconnect delays of the sessions over peer links. */
  backoff?: Backoff;
}

/** The data channel's label, so a stray channel of another protocol is never taken for ours. */
const CHANNEL_LABEL = "shoal.1";
const SIGNAL_TYPE = MESSAGE_TYPE_BYTES.signal;
const WELCOME_TYPE = MESSAGE_TYPE_BYTES.welcome;
const ERROR_TYPE = MESSAGE_TYPE_BYTES.error;
/** First delay before announcing again after a peer link ended; doubles per failure up to the max. */
const REANNOUNCE_BASE_MS = 500;
const REANNOUNCE_MAX_MS = 15_000;
/** After refusing a peer, how long its channel may take to deliver the refusal and close. */
const REFUSAL_FLUSH_MS = 2_000;
const REFUSAL_POLL_MS = 20;

/** A relay connection that completed hello, over which signals can go. */
interface RelayLink {
  ready: boolean;
  conn: TransportConnection | null;
}

/** One space's signalling state. */
interface SpaceState {
  readonly id: SpaceId;
  readonly bytes: Uint8Array;
  readonly key: Uint8Array;
  readonly signalKey: Promise<CryptoKey>;
  readonly sealer: SpaceSealer;
  readonly relays: Set<RelayLink>;
  readonly peers: Map<string, PeerLink>;
  /** Signals are handled one at a time, so an ICE candidate never overtakes the offer before it. */
  queue: Promise<void>;
  announceTimer: ReturnType<typeof setTimeout> | null;
  failures: number;
}

/** One negotiation (and, once open, one data channel) with one peer device in one space. */
interface PeerLink {
  readonly device: string;
  readonly nid: string;
  readonly role: "client" | "responder";
  readonly pc: RTCPeerConnection;
  readonly statusKey: string;
  remoteSession: string;
  /** The remote description is set: candidates can be added. */
  remoteSet: boolean;
  pendingIce: RTCIceCandidateInit[];
  /** Our offer or answer went out: our own candidates may follow it. */
  described: boolean;
  outIce: RTCIceCandidateInit[];
  opened: boolean;
  closed: boolean;
  session?: SpaceSession;
  /** The session's connection (client side), over which a refusal goes out. */
  conn?: TransportConnection;
  responder?: PeerResponder;
  /** The peer refused this device (its membership log): the link's status stays `refused`. */
  refusedBy?: AccessDenied;
  /** The open channel, watched after a refusal until the refusal frame has left. */
  channel?: DataChannelLike;
  /** This device refused the peer: the connection closes only once the channel has. */
  refusing?: boolean;
  timer: ReturnType<typeof setTimeout> | null;
  status: TransportStatus;
}

/**
 * Finds the other devices of each space through the relay and keeps one WebRTC data channel to each,
 * over which the same protocol runs as with the relay (PROTOCOL.md section 1.1), so that devices keep
 * syncing with each other when the relay is gone.
 *
 * - Discovery and negotiation: `signal` frames through the relay connections (it taps them: `tap`
 *   wraps a relay transport and takes the `signal` frames out before the session sees them). Once a
 *   relay connection is welcomed, this device broadcasts `announce`; a device with a smaller id than
 *   the announcer's offers, a larger one announces back directly so that the smaller offers. Offer,
 *   answer and trickled ICE candidates follow. Every payload is sealed with a key derived from the
 *   space key (PROTOCOL.md, "signal"), so only members of the space can take part, and the DTLS
 *   fingerprints in the SDP are authenticated: the relay cannot place itself in the middle.
 * - Over the open channel the smaller device runs a `SpaceSession` (the client side: uploads and pulls)
 *   and the larger a `PeerResponder` (answers from its replica and pushes its new commits live): one
 *   direction suffices for both ways. Peer acks are not relay receipts and peer links never carry
 *   snapshots.
 * - A channel that closes or a negotiation that stalls is dropped, and this device announces again
 *   (with backoff) while a relay connection is up. With the relay gone, open channels keep syncing.
 * - Membership (PROTOCOL.md 10, "Peer links"): before anything of a space goes to a peer or is taken
 *   from it, the peer's device is checked against this device's membership log (`peerAdmission`); a
 *   device the log removed (or that is no member while no invitation is open) gets one fatal
 *   `membership` error and the channel closes, also when the removal lands while the link is open.
 *   Refused by a peer, this device reports `AccessDenied` and keeps that link's status `refused`.
 *
 * @example
 * const peers = new PeerNetwork({ dexie, replica, iceServers: [] });
 * const engine = new SyncEngine(dexie, replica, [relayTransport], status, { peers });
 */
export class PeerNetwork {
  readonly #dexie: Dexie;
  readonly #replica: SessionReplica & PeerReplica;
  readonly #me: Uint8Array;
  readonly #iceServers: RTCIceServer[];
  readonly #PC: PeerConnectionConstructor;
  readonly #timeoutMs: number;
  readonly #backoff: Backoff | undefined;
  readonly #session = toHex(randomBytes(8));
  readonly #spaces = new Map<string, SpaceState>();
  readonly #gate: PeerGate;
  #host: PeerNetworkHost | null = null;
  #stopped = false;

  constructor(options: PeerNetworkOptions) {
    const PC =
      options.RTCPeerConnection ??
      (globalThis as { RTCPeerConnection?: PeerConnectionConstructor }).RTCPeerConnection;
    if (!PC) throw new ValidationError("WebRTC is not available here (no RTCPeerConnection).");
    this.#PC = PC;
    this.#dexie = options.dexie;
    this.#gate = new PeerGate(options.dexie);
    this.#replica = options.replica;
    this.#me = fromHex(options.replica.device, 16);
    this.#iceServers = options.iceServers ?? [];
    this.#timeoutMs = options.negotiationTimeoutMs ?? 15_000;
    this.#backoff = options.backoff;
  }

  /** Starts reporting to the engine. */
  start(host: PeerNetworkHost): void {
    this.#host = host;
    this.#stopped = false;
  }

  /** Closes every peer link and stops announcing. */
  stop(): void {
    this.#stopped = true;
    for (const st of this.#spaces.values()) {
      if (st.announceTimer) clearTimeout(st.announceTimer);
      st.announceTimer = null;
      for (const link of [...st.peers.values()]) this.#closeLink(st, link, "stopped", false);
    }
    this.#host = null;
  }

  /** Local commits may exist that peers lack: sessions upload them, responders push them. */
  poke(): void {
    for (const st of this.#spaces.values()) {
      for (const link of st.peers.values()) {
        link.session?.poke();
        link.responder?.poke();
      }
    }
  }

  /** Makes a space known (idempotent): its peers are looked for once a relay connection to it is up. */
  addSpace(row: Pick<SpaceRow, "id" | "key">): void {
    if (this.#spaces.has(row.id)) return;
    const bytes = fromHex(row.id, 16);
    this.#spaces.set(row.id, {
      id: row.id,
      bytes,
      key: row.key,
      signalKey: deriveSignalKey(row.key, bytes),
      sealer: new SpaceSealer(this.#dexie, row.id, row.key),
      relays: new Set(),
      peers: new Map(),
      queue: Promise.resolve(),
      announceTimer: null,
      failures: 0,
    });
  }

  /** Forgets a space this device left: closes its peer links and stops announcing in it. */
  removeSpace(id: SpaceId): void {
    const st = this.#spaces.get(id);
    if (!st) return;
    if (st.announceTimer) clearTimeout(st.announceTimer);
    st.announceTimer = null;
    for (const link of [...st.peers.values()]) this.#closeLink(st, link, "space left", false);
    this.#spaces.delete(id);
    this.#gate.forget(id);
  }

  /**
   * Wraps a relay transport so its connections also carry this device's signals: `signal` frames are
   * taken out of the stream (the session never sees them) and, once a connection is welcomed, it is
   * used to announce this device and to negotiate.
   */
  tap(inner: Transport): Transport {
    return {
      kind: inner.kind,
      get label(): string {
        return inner.label;
      },
      connect: (space, token, handlers, claim, proofs) => {
        const link: RelayLink = { ready: false, conn: null };
        const relayHandlers: TransportHandlers = {
          onOpen: () => handlers.onOpen(),
          onMessage: (frame) => {
            if (frame[0] === PROTOCOL_VERSION && frame[1] === SIGNAL_TYPE) {
              this.#onSignalFrame(space, frame);
              return;
            }
            handlers.onMessage(frame);
            if (frame[1] === WELCOME_TYPE && !link.ready) {
              link.ready = true;
              this.#relayUp(space, link);
            }
          },
          onClose: (reason, code) => {
            link.ready = false;
            this.#spaces.get(space)?.relays.delete(link);
            handlers.onClose(reason, code);
          },
        };
        const conn = inner.connect(space, token, relayHandlers, claim, proofs);
        link.conn = conn;
        return conn;
      },
    };
  }

  #relayUp(space: SpaceId, link: RelayLink): void {
    const st = this.#spaces.get(space);
    if (!st || this.#stopped) return;
    st.relays.add(link);
    this.#announce(st);
  }

  #announce(st: SpaceState): void {
    this.#send(st, null, { t: "announce", s: this.#session });
  }

  /** Announces again after a link ended, with backoff, while a relay connection can carry it. */
  #announceSoon(st: SpaceState): void {
    if (this.#stopped || st.announceTimer) return;
    const base = Math.min(REANNOUNCE_MAX_MS, REANNOUNCE_BASE_MS * 2 ** Math.min(st.failures, 10));
    st.failures++;
    st.announceTimer = setTimeout(
      () => {
        st.announceTimer = null;
        if (!this.#stopped) this.#announce(st);
      },
      base * (0.5 + Math.random() / 2),
    );
  }

  /** Seals and sends one signal over a ready relay connection of the space (dropped if none is up). */
  #send(st: SpaceState, to: string | null, body: SignalBody): void {
    const relay = [...st.relays].find((r) => r.ready && r.conn);
    if (!relay) return;
    const toBytes = to ? fromHex(to, 16) : new Uint8Array(SIGNAL_BROADCAST);
    void st.signalKey
      .then((key) => sealSignal(key, st.bytes, this.#me, toBytes, body))
      .then((payload) =>
        relay.conn?.send(
          encodeMessage({ type: "signal", space: st.bytes, from: this.#me, to: toBytes, payload }),
        ),
      )
      .catch((e: unknown) =>
        this.#host?.error(e instanceof ShoalError ? e : new ShoalError("SignalError", String(e))),
      );
  }

  #onSignalFrame(space: SpaceId, frame: Uint8Array): void {
    const st = this.#spaces.get(space);
    if (!st || this.#stopped) return;
    let m;
    try {
      m = decodeMessage(frame);
    } catch {
      return; // A malformed signal is only a lost signal: peers announce again.
    }
    if (m.type !== "signal" || !bytesEqual(m.space, st.bytes) || bytesEqual(m.from, this.#me)) return;
    const broadcast = bytesEqual(m.to, SIGNAL_BROADCAST);
    if (!broadcast && !bytesEqual(m.to, this.#me)) return;
    const from = toHex(m.from);
    st.queue = st.queue
      .then(async () => {
        const body = await openSignal(await st.signalKey, m.space, m.from, m.to, m.payload);
        if (body && !this.#stopped) await this.#onSignal(st, from, broadcast, body);
      })
      .catch((e: unknown) =>
        this.#host?.error(
          e instanceof ShoalError ? e : new ShoalError("SignalError", String((e as Error)?.message ?? e)),
        ),
      );
  }

  async #onSignal(st: SpaceState, from: string, broadcast: boolean, body: SignalBody): Promise<void> {
    let link = st.peers.get(from);
    const me = toHex(this.#me);
    switch (body.t) {
      case "announce":
        if (link && link.remoteSession !== body.s) {
          // The peer restarted (new signalling session): whatever we had with it is stale.
          this.#closeLink(st, link, "peer restarted", false);
          link = undefined;
        }
        if (link) return; // already connected or negotiating
        if (me < from) await this.#offer(st, from, body.s);
        else if (broadcast) this.#send(st, from, { t: "announce", s: this.#session });
        return;
      case "offer":
        if (me < from) return; // only the smaller device offers
        if (link) this.#closeLink(st, link, "new offer", false);
        await this.#answer(st, from, body);
        return;
      case "answer":
        if (!link || link.nid !== body.n || link.role !== "client" || link.remoteSet) return;
        await link.pc.setRemoteDescription({ type: "answer", sdp: body.sdp! });
        link.remoteSet = true;
        await this.#flushIce(link);
        return;
      case "ice":
        if (!link || link.nid !== body.n) return;
        if (!link.remoteSet) link.pendingIce.push(body.c!);
        else await link.pc.addIceCandidate(body.c!).catch(() => {});
        return;
      case "bye":
        if (link && link.nid === body.n) this.#closeLink(st, link, "peer left", true);
        return;
    }
  }

  async #flushIce(link: PeerLink): Promise<void> {
    for (const c of link.pendingIce.splice(0)) await link.pc.addIceCandidate(c).catch(() => {});
  }

  #newLink(
    st: SpaceState,
    device: string,
    role: PeerLink["role"],
    nid: string,
    remoteSession: string,
  ): PeerLink {
    const pc = new this.#PC({ iceServers: this.#iceServers });
    const statusKey = `webrtc|${st.id}|${device}`;
    const link: PeerLink = {
      device,
      nid,
      role,
      pc,
      statusKey,
      remoteSession,
      remoteSet: false,
      pendingIce: [],
      described: false,
      outIce: [],
      opened: false,
      closed: false,
      timer: null,
      status: { kind: "webrtc", label: device.slice(0, 8), space: st.id, state: "connecting" },
    };
    st.peers.set(device, link);
    pc.onicecandidate = (e) => {
      if (!e.candidate || link.closed) return;
      // Candidates are forwarded exactly as the browser gave them (TOOLCHAIN.md: mDNS names included).
      const c = e.candidate.toJSON();
      if (link.described) this.#send(st, device, { t: "ice", s: this.#session, n: nid, c });
      else link.outIce.push(c);
    };
    pc.onconnectionstatechange = () => {
      if (pc.connectionState === "failed" || pc.connectionState === "closed")
        this.#closeLink(st, link, `peer connection ${pc.connectionState}`, true);
    };
    link.timer = setTimeout(() => {
      if (!link.opened) this.#closeLink(st, link, "negotiation timed out", true);
    }, this.#timeoutMs);
    this.#report(link, {});
    return link;
  }

  /** Our offer or answer is out: send the candidates gathered meanwhile. */
  #described(st: SpaceState, link: PeerLink): void {
    link.described = true;
    for (const c of link.outIce.splice(0))
      this.#send(st, link.device, { t: "ice", s: this.#session, n: link.nid, c });
  }

  async #offer(st: SpaceState, device: string, remoteSession: string): Promise<void> {
    const link = this.#newLink(st, device, "client", toHex(randomBytes(8)), remoteSession);
    const channel = link.pc.createDataChannel(CHANNEL_LABEL, { ordered: true });
    this.#useChannel(st, link, channel as unknown as DataChannelLike);
    const offer = await link.pc.createOffer();
    await link.pc.setLocalDescription(offer);
    if (link.closed) return;
    this.#send(st, device, { t: "offer", s: this.#session, n: link.nid, sdp: offer.sdp ?? "" });
    this.#described(st, link);
  }

  async #answer(st: SpaceState, device: string, body: SignalBody): Promise<void> {
    const link = this.#newLink(st, device, "responder", body.n!, body.s);
    link.pc.ondatachannel = (e) => {
      if (e.channel.label !== CHANNEL_LABEL || link.closed || link.responder) {
        e.channel.close();
        return;
      }
      this.#useChannel(st, link, e.channel as unknown as DataChannelLike);
    };
    await link.pc.setRemoteDescription({ type: "offer", sdp: body.sdp! });
    link.remoteSet = true;
    await this.#flushIce(link);
    const answer = await link.pc.createAnswer();
    await link.pc.setLocalDescription(answer);
    if (link.closed) return;
    this.#send(st, device, { t: "answer", s: this.#session, n: link.nid, sdp: answer.sdp ?? "" });
    this.#described(st, link);
  }

  /** Runs the protocol over the channel: a session on the smaller device, a responder on the larger. */
  #useChannel(st: SpaceState, link: PeerLink, channel: DataChannelLike): void {
    const device = link.device as DeviceId;
    link.channel = channel;
    const opened = () => {
      if (link.opened) return;
      link.opened = true;
      st.failures = 0;
      if (link.timer) clearTimeout(link.timer);
      link.timer = null;
    };
    const gone = (reason?: string) =>
      queueMicrotask(() => this.#closeLink(st, link, reason ?? "channel closed", true));
    const admit = () => this.#gate.check(st.id, link.device);
    if (link.role === "client") {
      const replica: SessionReplica = {
        device: this.#replica.device,
        // Every pull and upload starts from the vector: the membership check goes first, so a device
        // removed while its link is open gets nothing after the removal, not even this vector.
        vector: async (spaces) => {
          const refusal = await admit();
          if (!refusal) return this.#replica.vector(spaces);
          this.#refuse(st, link, refusal);
          return {};
        },
        applyCommits: (commits) => this.#replica.applyCommits(commits),
        // A peer's ack is not the relay's receipt: `pendingCommits` and `durability` stay about the relay.
        recordAcks: async () => {},
        readSnapshot: (space) => this.#replica.readSnapshot(space),
        importSnapshot: (content) => this.#replica.importSnapshot(content),
      };
      link.session = new SpaceSession({
        space: st.id,
        replica,
        sealer: st.sealer,
        transport: this.#watchRefusal(st, link, webRtcTransport({ channel, peer: device })),
        token: new Uint8Array(0),
        spaceKey: st.key,
        backoff: this.#backoff,
        // Peers keep no snapshots: never ask one for a snapshot nor publish to it.
        snapshots: { bootstrap: false, publishEvery: 0 },
        hooks: {
          state: (state, detail) => {
            if (state === "connected") opened();
            this.#report(link, { state, detail });
            if (state === "offline" || state === "refused") gone(detail);
          },
          error: (e) => this.#host?.error(e),
          synced: () => {
            this.#report(link, { lastSyncedAt: Date.now() });
            this.#host?.synced(st.id);
          },
          acked: () => {},
        },
      });
      link.session.start();
    } else {
      link.responder = new PeerResponder({
        space: st.id,
        peer: device,
        replica: this.#replica,
        sealer: st.sealer,
        connect: (handlers) => openDataChannelLink(channel, handlers),
        admit: async () => {
          const refusal = await admit();
          // The responder refuses by itself: its connection must outlive the refusal frame.
          if (refusal) link.refusing = true;
          return refusal;
        },
        hooks: {
          state: (state, detail) => {
            if (state === "connected") opened();
            this.#report(link, { state, detail });
            if (state === "offline" || state === "refused") gone(detail);
          },
          error: (e) => {
            if (e.code === "AccessDenied") link.refusedBy = e as AccessDenied;
            this.#host?.error(e);
          },
        },
      });
      link.responder.start();
    }
  }

  /**
   * The session's transport, watched for the peer's refusal of this device: the frame never reaches
   * the session (it would read it as a relay's); the link reports `AccessDenied` and closes.
   */
  #watchRefusal(st: SpaceState, link: PeerLink, inner: Transport): Transport {
    return {
      kind: inner.kind,
      label: inner.label,
      connect: (space, token, handlers) => {
        const conn = inner.connect(space, token, {
          onOpen: () => handlers.onOpen(),
          onClose: (reason, code) => handlers.onClose(reason, code),
          onMessage: (frame) => {
            const refused = frame[1] === ERROR_TYPE ? refusalOf(frame) : undefined;
            if (!refused) return handlers.onMessage(frame);
            link.refusedBy = refused;
            this.#host?.error(refused);
            this.#report(link, { state: "refused", detail: refused.message });
            this.#closeLink(st, link, refused.message, true);
          },
        });
        link.conn = conn;
        return conn;
      },
    };
  }

  /** This device refuses the peer's device: one fatal `membership` error, then the link closes. */
  #refuse(st: SpaceState, link: PeerLink, refusal: PeerRefusal): void {
    if (link.closed) return;
    link.refusing = true;
    if (link.responder) link.responder.refuse(refusal);
    else link.conn?.send(peerRefusalFrame(refusal));
    this.#closeLink(st, link, `refused the peer (${refusal})`, false);
  }

  #report(link: PeerLink, patch: Partial<TransportStatus>): void {
    if (link.closed) return;
    link.status = { ...link.status, ...patch };
    this.#host?.status(link.statusKey, link.status);
  }

  #closeLink(st: SpaceState, link: PeerLink, reason: string, again: boolean): void {
    if (link.closed) return;
    link.closed = true;
    if (link.timer) clearTimeout(link.timer);
    if (st.peers.get(link.device) === link) st.peers.delete(link.device);
    // Tell the other side at once (when a relay can carry it) rather than letting it time out.
    if (!link.opened) this.#send(st, link.device, { t: "bye", s: this.#session, n: link.nid });
    link.session?.stop();
    link.responder?.stop();
    const closePc = () => {
      try {
        link.pc.close();
      } catch {
        // Closing twice is harmless.
      }
    };
    // A closing data channel still sends what it holds (the refusal frame), but closing the peer
    // connection drops it: wait for the channel to finish closing first, within a bound.
    if (link.refusing && link.channel && link.channel.readyState !== "closed") {
      const channel = link.channel;
      const since = Date.now();
      const poll = setInterval(() => {
        if (channel.readyState !== "closed" && Date.now() - since < REFUSAL_FLUSH_MS) return;
        clearInterval(poll);
        closePc();
      }, REFUSAL_POLL_MS);
    } else closePc();
    // Refused by the peer: waiting does not fix it, so the status says so until a new link replaces it.
    const refused = link.refusedBy && {
      ...link.status,
      state: "refused" as const,
      detail: link.refusedBy.message,
    };
    this.#host?.status(link.statusKey, refused || null);
    if (again && !this.#stopped) this.#announceSoon(st);
    void reason;
  }
}

/** The peer's refusal of this device in an `error` frame, or undefined (also for a malformed frame). */
function refusalOf(frame: Uint8Array): AccessDenied | undefined {
  try {
    return peerRefusalIn(decodeMessage(frame));
  } catch {
    return undefined; // the session reads it again and reports what is wrong with it
  }
}
