import { deriveRelayToken } from "../../src/crypto/keys.ts";
import {
  decodeBase64Url,
  decodeMessage,
  encodeMessage,
  fromHex,
  maxSnapshotPartBytes,
  PROTOCOL_VERSION,
  toHex,
  type Message,
  type VectorEntry,
} from "../../src/protocol/index.ts";
import type { Transport, TransportConnection } from "../../src/transports/transport.ts";
import type { SpaceId } from "../../src/types.ts";

/** What the relay answered to one hostile upload. */
export interface LinkOutcome {
  /** `ack`ed, `snapshot-stored`, or the relay's error code (`conflict`, `gap`, `too-large`, ...). */
  answer: "acked" | "stored" | string;
  /** Commits the relay acknowledged before the answer (an upload stops at its first refusal). */
  acked: number;
}

/** Commits per `commits` frame: well under the codec's per-batch cap and the frame size. */
const FRAME_COMMITS = 200;
const FRAME_BYTES = 900_000;
/** How long a hostile upload waits for the relay's answer before giving up on it (a dropped link). */
const ANSWER_MS = 5_000;

/**
 * A member's raw connection to the relay, speaking the wire protocol by hand (hello, commits,
 * snapshot-put) instead of through a `SpaceSession`: what a modified client or a script with the
 * space key can do. It uploads exactly the bytes it is given and reports the relay's answer; it never
 * reads or applies anything. One upload at a time.
 *
 * @example
 * const link = await HostileLink.open(net.transport("hostile"), space, key, device);
 * await link.upload([sealed]); link.close();
 */
export class HostileLink {
  readonly #conn: TransportConnection;
  readonly #space: Uint8Array;
  #waiting: ((m: Message | null) => void) | null = null;
  #closed = false;
  /** The relay's vector from `welcome`: the head it holds per device. */
  readonly heads = new Map<string, number>();

  private constructor(conn: TransportConnection, space: Uint8Array) {
    this.#conn = conn;
    this.#space = space;
  }

  /** Connects and says hello as `device`; resolves once welcomed, or null if the link failed. */
  static async open(
    transport: Transport,
    space: SpaceId,
    spaceKey: Uint8Array,
    device: string,
  ): Promise<HostileLink | null> {
    const spaceBytes = fromHex(space, 16);
    const token = decodeBase64Url(await deriveRelayToken(spaceKey, spaceBytes));
    let link!: HostileLink;
    const conn = transport.connect(space, token, {
      onOpen: () =>
        conn.send(
          encodeMessage({
            type: "hello",
            minVersion: PROTOCOL_VERSION,
            maxVersion: PROTOCOL_VERSION,
            device: fromHex(device, 16),
          }),
        ),
      onMessage: (frame) => link.#receive(frame),
      onClose: () => {
        link.#closed = true;
        link.#answer(null);
      },
    });
    link = new HostileLink(conn, spaceBytes);
    // The relay's vector may come in pages (protocol 2): read until the last one.
    for (;;) {
      const welcome = await link.#next((m) => m.type === "welcome");
      if (welcome?.type !== "welcome") return (link.close(), null);
      for (const e of welcome.vector) link.heads.set(toHex(e.device), e.seq);
      if (!welcome.more) return link;
    }
  }

  /** Uploads sealed commits in order, frame by frame; stops at the first refusal. */
  async upload(commits: readonly Uint8Array[]): Promise<LinkOutcome> {
    let acked = 0;
    for (let i = 0; i < commits.length;) {
      const batch: Uint8Array[] = [];
      let bytes = 0;
      while (i < commits.length && batch.length < FRAME_COMMITS && bytes + commits[i]!.length < FRAME_BYTES) {
        bytes += commits[i]!.length;
        batch.push(commits[i++]!);
      }
      if (batch.length === 0) batch.push(commits[i++]!); // a single oversized commit: let the relay judge
      if (!this.#send({ type: "commits", space: this.#space, commits: batch, more: false }))
        return { answer: "closed", acked };
      const m = await this.#next((x) => x.type === "ack" || x.type === "error");
      if (m?.type !== "ack") return { answer: m?.type === "error" ? m.code : "closed", acked };
      acked += batch.length;
    }
    return { answer: "acked", acked };
  }

  /** Uploads a sealed snapshot claiming `vector`, in parts; resolves with the relay's answer. */
  async putSnapshot(vector: Record<string, number>, sealed: Uint8Array): Promise<LinkOutcome> {
    const entries: VectorEntry[] = Object.entries(vector).map(([d, seq]) => ({
      device: fromHex(d, 16),
      seq,
    }));
    const size = maxSnapshotPartBytes(entries.length);
    const parts = Math.max(1, Math.ceil(sealed.length / size));
    for (let part = 0; part < parts; part++) {
      const bytes = sealed.subarray(part * size, (part + 1) * size);
      if (!this.#send({ type: "snapshot-put", space: this.#space, vector: entries, part, parts, bytes }))
        return { answer: "closed", acked: 0 };
    }
    const m = await this.#next((x) => x.type === "snapshot-stored" || x.type === "error");
    return {
      answer: m?.type === "snapshot-stored" ? "stored" : m?.type === "error" ? m.code : "closed",
      acked: 0,
    };
  }

  close(): void {
    this.#closed = true;
    this.#conn.close("hostile done");
  }

  #send(m: Message): boolean {
    if (this.#closed) return false;
    try {
      this.#conn.send(encodeMessage(m));
      return true;
    } catch {
      // The codec refuses what no honest client could send (a vector over its cap): that is an answer.
      return false;
    }
  }

  /** The next frame matching `want` (others, such as live pushes, are ignored), or null. */
  #next(want: (m: Message) => boolean): Promise<Message | null> {
    if (this.#closed) return Promise.resolve(null);
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.#answer(null), ANSWER_MS);
      this.#waiting = (m) => {
        if (m !== null && !want(m)) return;
        clearTimeout(timer);
        this.#waiting = null;
        resolve(m);
      };
    });
  }

  #answer(m: Message | null): void {
    this.#waiting?.(m);
  }

  #receive(frame: Uint8Array): void {
    let m: Message;
    try {
      m = decodeMessage(frame);
    } catch {
      return; // a damaged frame (the network may flip bits): the upload times out or closes
    }
    if (m.type === "ping") return void this.#send({ type: "pong", nonce: m.nonce });
    this.#answer(m);
  }
}
