import type { Dexie } from "dexie";
import { ShoalError, ValidationError } from "../errors.ts";
import { randomBytes } from "../ids.ts";
import {
  SIGNAL_BROADCAST,
  bytesEqual,
  decodeMessage,
  encodeMessage,
  fromHex,
  toHex,
} from "../protocol/index.ts";
import type { SpaceRow } from "../replica/stored-rows.ts";
import type { DataChannelLike } from "../transports/webrtc-transport.ts";
import type { SpaceId } from "../types.ts";
import { closePeerConnection } from "./close-peer-connection.ts";
import { PeerGate, peerRefusalFrame, type PeerRefusal } from "./peer-admission.ts";
import type { PeerLink } from "./peer-link.ts";
import type { PeerNetworkHost } from "./peer-network-host.ts";
import type { PeerConnectionConstructor, PeerNetworkOptions } from "./peer-network-options.ts";
import type { PeerReplica } from "./peer-replica.ts";
import { runPeerChannel, type PeerChannelContext } from "./run-peer-channel.ts";
import { deriveSignalKey, openSignal, sealSignal, type SignalBody } from "./signal-seal.ts";
import type { RelayLink, SpaceState } from "./space-state.ts";
import { tapRelay } from "./tap-relay.ts";
import { SpaceSealer } from "../sealing/sealer.ts";
import type { Backoff, SessionReplica } from "../sync/space-session.ts";
import type { TransportStatus } from "../status/sync-status.ts";
import type { Transport } from "../transports/transport.ts";

// ---------------------------------------------------------------------------------------------------
// The peer network: discovery and negotiation through the relay, then one data channel per peer

/** The data channel's label, so a stray channel of another protocol is never taken for ours. */
const CHANNEL_LABEL = "shoal.1";
/** First delay before announcing again after a peer link ended; doubles per failure up to the max. */
const REANNOUNCE_BASE_MS = 500;
const REANNOUNCE_MAX_MS = 15_000;

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
  /** What running the protocol over a channel needs of this network (`runPeerChannel`). */
  readonly #channels: PeerChannelContext;

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
    this.#channels = {
      replica: this.#replica,
      backoff: this.#backoff,
      host: () => this.#host,
      admit: (space, device) => this.#gate.check(space, device),
      report: (link, patch) => this.#report(link, patch),
      closeLink: (st, link, reason, again) => this.#closeLink(st, link, reason, again),
      refuse: (st, link, refusal) => this.#refuse(st, link, refusal),
    };
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
    return tapRelay(inner, {
      signal: (space, frame) => this.#onSignalFrame(space, frame),
      up: (space, link) => this.#relayUp(space, link),
      down: (space, link) => this.#spaces.get(space)?.relays.delete(link),
    });
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
    runPeerChannel(this.#channels, st, link, channel as unknown as DataChannelLike);
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
      runPeerChannel(this.#channels, st, link, e.channel as unknown as DataChannelLike);
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
    closePeerConnection(link);
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
