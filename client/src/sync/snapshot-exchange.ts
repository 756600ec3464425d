import { concatBytes } from "../crypto/bytes.ts";
import { ProtocolError, ShoalError } from "../errors.ts";
import { fromHex, toHex, type Message, type VectorEntry } from "../protocol/index.ts";
import type { SpaceId } from "../types.ts";
import { decodeSnapshot, encodeSnapshot, type SnapshotContent } from "./snapshot-codec.ts";
import { openSnapshot, sealSnapshot } from "./snapshot-seal.ts";

/** When to use snapshots. */
export interface SnapshotPolicy {
  /** A device holding nothing of a space asks the relay for its snapshot first (default true). */
  bootstrap: boolean;
  /**
   * Publish a snapshot once this many commits exist beyond the last one this session saw (default
   * 1,000; 0 never). Only when everything this device holds is on the relay.
   */
  publishEvery: number;
}

export const DEFAULT_SNAPSHOTS: SnapshotPolicy = { bootstrap: true, publishEvery: 1000 };
/** Bytes of a snapshot per frame. */
const SNAPSHOT_PART = 512 * 1024;

/** Sum of a vector's sequences: how many commits it covers. */
export function vectorTotal(v: Record<string, number>): number {
  return Object.values(v).reduce((n, x) => n + x, 0);
}

/**
 * One space session's side of snapshots: fetching the relay's snapshot when bootstrapping (parts in
 * order, opened with the space's snapshot key, imported in one transaction) and publishing one (read
 * consistently, sealed, sent in parts, answered by `snapshot-stored` or a refusal). The session routes
 * the frames here and decides when.
 */
export class SnapshotExchange {
  readonly policy: SnapshotPolicy;
  readonly #space: SpaceId;
  readonly #spaceBytes: Uint8Array;
  readonly #spaceKey: Uint8Array;
  readonly #send: (m: Message) => void;
  /** Parts of the snapshot being received, or null when none is awaited. */
  #incoming: Uint8Array[] | null = null;
  /** Commits covered by the newest snapshot seen or published. */
  #total = 0;
  #publishing: { resolve: (stored: boolean) => void } | null = null;

  constructor(opts: {
    space: SpaceId;
    spaceKey: Uint8Array;
    policy?: Partial<SnapshotPolicy>;
    send: (m: Message) => void;
  }) {
    this.#space = opts.space;
    this.#spaceBytes = fromHex(opts.space, 16);
    this.#spaceKey = opts.spaceKey;
    this.#send = opts.send;
    this.policy = { ...DEFAULT_SNAPSHOTS, ...opts.policy };
  }

  /** Asks the relay for its snapshot (a fresh device, before pulling). */
  request(): void {
    this.#incoming = [];
    this.#send({ type: "snapshot-get", space: this.#spaceBytes });
  }

  /**
   * Takes one `snapshot` frame. Resolves null while parts are missing, else the opened content (or
   * "none" when the relay has none or it could not be opened: then the session pulls every commit).
   */
  async receive(
    vector: VectorEntry[],
    part: number,
    parts: number,
    bytes: Uint8Array,
    report: (e: ShoalError) => void,
  ): Promise<SnapshotContent | "none" | null> {
    if (!this.#incoming) return null;
    if (parts > 0) {
      if (part !== this.#incoming.length)
        throw new ProtocolError("bad-field", "Snapshot parts arrived out of order.");
      this.#incoming.push(bytes);
      if (part < parts - 1) return null;
    }
    const chunks = this.#incoming;
    this.#incoming = null;
    if (parts === 0) return "none";
    const v: Record<string, number> = {};
    for (const e of vector) v[toHex(e.device)] = e.seq;
    try {
      return decodeSnapshot(
        await openSnapshot(this.#spaceKey, this.#space, v, concatBytes(...chunks)),
        this.#space,
      );
    } catch (e) {
      // A bad snapshot costs only speed: report it and fall back to pulling every commit.
      report(
        e instanceof ShoalError ? e : new ShoalError("SnapshotError", String((e as Error)?.message ?? e)),
      );
      return "none";
    }
  }

  /** A snapshot covering `total` commits is in place (imported or stored). */
  noteCovered(total: number): void {
    this.#total = Math.max(this.#total, total);
  }

  /** Whether the policy wants a snapshot now, given what this device holds. */
  due(ours: Record<string, number>): boolean {
    return (
      this.policy.publishEvery > 0 &&
      !this.#publishing &&
      vectorTotal(ours) - this.#total >= this.policy.publishEvery
    );
  }

  /**
   * Seals and sends a snapshot; returns (wrapped, since `await` would flatten it) the promise of the
   * relay's answer, which arrives later through `stored`/`refused`.
   */
  async publish(content: SnapshotContent): Promise<{ stored: Promise<boolean> }> {
    const sealed = await sealSnapshot(this.#spaceKey, this.#space, content.vector, encodeSnapshot(content));
    const vector: VectorEntry[] = Object.entries(content.vector).map(([d, seq]) => ({
      device: fromHex(d, 16),
      seq,
    }));
    const parts = Math.max(1, Math.ceil(sealed.length / SNAPSHOT_PART));
    const stored = new Promise<boolean>((resolve) => (this.#publishing = { resolve }));
    for (let part = 0; part < parts; part++) {
      this.#send({
        type: "snapshot-put",
        space: this.#spaceBytes,
        vector,
        part,
        parts,
        bytes: sealed.subarray(part * SNAPSHOT_PART, (part + 1) * SNAPSHOT_PART),
      });
    }
    return { stored };
  }

  /** `snapshot-stored` arrived. */
  stored(vector: VectorEntry[]): void {
    this.noteCovered(vector.reduce((n, e) => n + e.seq, 0));
    this.#settle(true);
  }

  /** A refusal arrived; true if it was about the snapshot being published (then it is settled). */
  refused(m: Extract<Message, { type: "error" }>): boolean {
    if (!this.#publishing || !(m.code === "stale-snapshot" || (m.code === "gap" && !m.device))) return false;
    this.#settle(false);
    return true;
  }

  /** The connection closed: nothing more will answer. */
  reset(): void {
    this.#incoming = null;
    this.#settle(false);
  }

  #settle(stored: boolean): void {
    this.#publishing?.resolve(stored);
    this.#publishing = null;
  }
}
