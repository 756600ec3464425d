import { concatBytes } from "../crypto/bytes.ts";
import { sha256 } from "../crypto/seal.ts";
import { ProtocolError, ShoalError, SignatureInvalid } from "../errors.ts";
import {
  MAX_SNAPSHOT_BYTES,
  bytesEqual,
  fromHex,
  toHex,
  type Message,
  type VectorEntry,
} from "../protocol/index.ts";
import type { Commit } from "../replica/commit.ts";
import { OPEN_PER_SLICE, TaskBudget, yieldToPage } from "../replica/task-budget.ts";
import type { DeviceId, SpaceId } from "../types.ts";
import type { OpenedCommit, SpaceSealer } from "../sealing/sealer.ts";
import {
  decodeSnapshot,
  encodeSnapshot,
  type SnapshotContent,
  type SnapshotHead,
  type SnapshotWire,
} from "./snapshot-codec.ts";
import { openSnapshot, sealSnapshot } from "./snapshot-seal.ts";
import type { SnapshotCoverage } from "./snapshot-coverage.ts";

/** A downloaded snapshot, opened and checked: what to import, the sealed commits to keep, its publisher. */
export interface ReceivedSnapshot {
  content: SnapshotContent;
  opened: OpenedCommit[];
  /** The device the snapshot says published it (a claim: any member could have written it). */
  publisher: DeviceId;
  /** A compacted snapshot (format 3, a space with members): records only, attested by the log. */
  compacted?: boolean;
}

/**
 * Opens a downloaded snapshot of a space with members as a compacted one (`openCompactedSnapshot`), or
 * resolves undefined when the space has no members here (then it is a format 2 snapshot).
 */
export type CompactedOpener = (
  vector: Record<string, number>,
  sealed: Uint8Array,
) => Promise<{ content: SnapshotContent; publisher: DeviceId } | undefined>;

function snapshotError(message: string): ShoalError {
  return new ShoalError("SnapshotError", message);
}

/**
 * A snapshot as it travels: the log as the sealed commits (exactly as the relay holds them, sealing
 * what is not sealed yet), each device's head hash, and the publisher.
 */
export async function snapshotWire(
  sealer: SpaceSealer,
  content: SnapshotContent,
  publisher: DeviceId,
): Promise<SnapshotWire> {
  const byId = new Map<string, Uint8Array>();
  const heads: Record<string, SnapshotHead> = {};
  for (const [device, seq] of Object.entries(content.vector)) {
    const range = await sealer.sealedRange(device as DeviceId, 1, seq);
    range.forEach((b, i) => byId.set(`${device}.${i + 1}`, b));
    heads[device] = { seq, hash: await sha256(range[range.length - 1]!) };
  }
  return {
    publisher,
    heads,
    sealed: content.commits.map((c) => byId.get(`${c.device}.${c.seq}`)!),
    docs: content.docs,
  };
}

/**
 * Ties a downloaded snapshot's log to the sealed commits: every commit opens with the space's key (its
 * nonce the synthetic one) and follows its device's previous one (chain hash), each device's commits
 * run from 1 to exactly the seq of the snapshot's vector, and the last one's hash is the head the
 * snapshot states. Whether the relay holds those very heads the session checks next, by fetching them.
 * Throws `SnapshotError` (or the commit's own error) when any of it fails.
 */
export async function verifySnapshot(
  sealer: SpaceSealer,
  space: SpaceId,
  wire: SnapshotWire,
  vector: Record<string, number>,
): Promise<ReceivedSnapshot> {
  const opened: OpenedCommit[] = [];
  const last = new Map<string, OpenedCommit>();
  // A snapshot carries a thousand commits or more: opened in slices, the page keeps its turns.
  const budget = new TaskBudget("open", OPEN_PER_SLICE);
  for (const bytes of wire.sealed) {
    await budget.step();
    let o: OpenedCommit;
    try {
      o = await sealer.open(bytes, (d, seq) => {
        const prev = last.get(d);
        return prev && prev.commit.seq === seq ? prev.sealed : undefined;
      });
    } catch (e) {
      // Only a device's own key signs its commits: a snapshot carrying one its device did not sign was
      // forged by whoever wrote it. Reported like any forged snapshot; it is never imported.
      if (e instanceof SignatureInvalid) await reportUnsignedCommit(sealer, space, wire.publisher, e, bytes);
      throw e;
    }
    // A snapshot is refused whole for a commit its publisher could not have applied either.
    if (o.commit.defect)
      throw snapshotError(`The snapshot's commit ${o.commit.id} cannot be read: ${o.commit.defect.message}`);
    const before = last.get(o.commit.device)?.commit.seq ?? 0;
    if (o.commit.seq !== before + 1)
      throw snapshotError(`The snapshot's commits of device ${o.commit.device} are not in sequence.`);
    last.set(o.commit.device, o);
    opened.push(o);
  }
  const devices = new Set([...Object.keys(vector), ...Object.keys(wire.heads), ...last.keys()]);
  for (const d of devices) {
    const head = wire.heads[d];
    const top = last.get(d);
    if (!head || !top || head.seq !== vector[d] || top.commit.seq !== head.seq)
      throw snapshotError(`The snapshot's heads, vector and commits disagree for device ${d}.`);
    if (!bytesEqual(await sha256(top.sealed), head.hash))
      throw snapshotError(`The snapshot's last commit of device ${d} is not the head it states.`);
  }
  const commits: Commit[] = opened.map((o) => o.commit);
  return { content: { space, vector, commits, docs: wire.docs }, opened, publisher: wire.publisher };
}

async function reportUnsignedCommit(
  sealer: SpaceSealer,
  space: SpaceId,
  publisher: DeviceId,
  e: SignatureInvalid,
  bytes: Uint8Array,
): Promise<void> {
  sealer.integrity.report({
    kind: "forged-snapshot",
    space,
    device: publisher,
    seq: e.seq,
    refused: { hash: toHex(await sha256(bytes)), source: "snapshot" },
    message: `The snapshot of space ${space} published by device ${publisher} carries commit ${e.seq} of device ${e.device}, which that device did not sign: it was refused, and every commit is pulled instead.`,
  });
}

/** When to use snapshots. */
export interface SnapshotPolicy {
  /** A device holding nothing of a space asks the relay for its snapshot first (default true). */
  bootstrap: boolean;
  /**
   * The most commits between two snapshots (default 1,000; 0: never publish). A writer publishes once
   * the commits beyond the newest snapshot it knows of reach the larger of `publishFirst` and that
   * snapshot's own count (the log doubled since), at most this many; only when everything it holds is
   * on the relay, right after the relay acknowledged its own upload.
   */
  publishEvery: number;
  /**
   * The fewest commits a space needs before its first snapshot (default 1,000). Lower (e.g. 10), small
   * spaces bootstrap from one too, about twice as fast as replaying (10,000 records: 9.9 s against 13.1
   * s), and doubling from there keeps the bytes of all snapshots published within a small multiple of
   * the log's own (a plain snapshot holds the log). Not the default yet: the import is now written in
   * bounded transactions (a search typed meanwhile waits ~0.2 s, was 5.5 s), but opening the snapshot
   * is one AES-GCM decryption of all of it, one task of ~110 ms at 10,000 records (a replay's longest
   * is ~56 ms); README "Round three (issue 15): sliced snapshot import".
   */
  publishFirst: number;
}

export const DEFAULT_SNAPSHOTS: SnapshotPolicy = { bootstrap: true, publishEvery: 1000, publishFirst: 1000 };

/**
 * How many commits beyond the newest known snapshot (covering `covered` commits) make the next one due.
 *
 * @example
 * const small = { ...DEFAULT_SNAPSHOTS, publishFirst: 10 };
 * publishThreshold(small, 0); // 10: the first snapshot
 * publishThreshold(small, 40); // 40: the log doubled
 * publishThreshold(small, 5000); // 1000: the cap
 */
export function publishThreshold(policy: SnapshotPolicy, covered: number): number {
  return Math.min(policy.publishEvery, Math.max(policy.publishFirst, covered));
}
/** Bytes of a snapshot per frame. */
const SNAPSHOT_PART = 512 * 1024;

/** Sum of a vector's sequences: how many commits it covers. */
export function vectorTotal(v: Record<string, number>): number {
  return Object.values(v).reduce((n, x) => n + x, 0);
}

/**
 * One space session's side of snapshots: fetching the relay's snapshot when bootstrapping (parts in
 * order, opened with the space's snapshot key, checked whole, imported in bounded transactions) and
 * publishing one (read consistently, sealed, sent in parts, answered by `snapshot-stored` or a
 * refusal). The session routes the frames here and decides when.
 */
export class SnapshotExchange {
  readonly policy: SnapshotPolicy;
  readonly #space: SpaceId;
  readonly #spaceBytes: Uint8Array;
  readonly #spaceKey: Uint8Array;
  readonly #send: (m: Message) => void;
  readonly #sealer: SpaceSealer;
  readonly #device: DeviceId;
  /** Parts of the snapshot being received, or null when none is awaited. */
  #incoming: Uint8Array[] | null = null;
  #incomingBytes = 0;
  /** Commits covered by the newest snapshot seen or published. */
  #total = 0;
  /** Where `#total` is kept across restarts; read once, before the first `due`. */
  readonly #coverage: SnapshotCoverage | undefined;
  #coverageRead = false;
  /** The snapshot being published, and the commits it covers. */
  #publishing: { resolve: (stored: boolean) => void; total: number } | null = null;
  readonly #openCompacted: CompactedOpener | undefined;

  constructor(opts: {
    space: SpaceId;
    spaceKey: Uint8Array;
    policy?: Partial<SnapshotPolicy>;
    send: (m: Message) => void;
    sealer: SpaceSealer;
    /** This device, named as the publisher of the snapshots it publishes. */
    device: DeviceId;
    /** Opens compacted snapshots (spaces with members); absent: only format 2 is read. */
    openCompacted?: CompactedOpener;
    /** Keeps what the newest known snapshot covers across restarts (absent: this session only). */
    coverage?: SnapshotCoverage;
  }) {
    this.#coverage = opts.coverage;
    this.#openCompacted = opts.openCompacted;
    this.#sealer = opts.sealer;
    this.#device = opts.device;
    this.#space = opts.space;
    this.#spaceBytes = fromHex(opts.space, 16);
    this.#spaceKey = opts.spaceKey;
    this.#send = opts.send;
    this.policy = { ...DEFAULT_SNAPSHOTS, ...opts.policy };
  }

  /** Asks the relay for its snapshot (a fresh device, before pulling). */
  request(): void {
    this.#incoming = [];
    this.#incomingBytes = 0;
    this.#send({ type: "snapshot-get", space: this.#spaceBytes });
  }

  /**
   * Takes one `snapshot` frame. Resolves null while parts are missing, else the opened and checked
   * snapshot (or "none" when the relay has none or it could not be used: then the session pulls every
   * commit). A download past `MAX_SNAPSHOT_BYTES` is dropped at once and its remaining parts ignored.
   */
  async receive(
    vector: VectorEntry[],
    part: number,
    parts: number,
    bytes: Uint8Array,
    report: (e: ShoalError) => void,
  ): Promise<ReceivedSnapshot | "none" | null> {
    if (!this.#incoming) return null;
    if (parts > 0) {
      if (part !== this.#incoming.length)
        throw new ProtocolError("bad-field", "Snapshot parts arrived out of order.");
      this.#incomingBytes += bytes.length;
      if (this.#incomingBytes > MAX_SNAPSHOT_BYTES) {
        this.#incoming = null;
        report(
          snapshotError(
            `The relay's snapshot exceeds ${MAX_SNAPSHOT_BYTES} bytes: not downloaded; pulling every commit instead.`,
          ),
        );
        return "none";
      }
      this.#incoming.push(bytes);
      if (part < parts - 1) return null;
    }
    const chunks = this.#incoming;
    this.#incoming = null;
    if (parts === 0) return "none";
    const v: Record<string, number> = {};
    for (const e of vector) v[toHex(e.device)] = e.seq;
    try {
      // Each stage over the whole snapshot (joining its parts, decrypting it, decoding it) is a task of
      // its own: run back to back, with the frame's own decoding, they held the page for 270 ms at
      // 3,000 records (issue 15).
      await yieldToPage();
      const blob = concatBytes(...chunks);
      await yieldToPage();
      const compacted = await this.#openCompacted?.(v, blob);
      if (compacted) return { ...compacted, opened: [], compacted: true };
      const plain = await openSnapshot(this.#spaceKey, this.#space, v, blob);
      await yieldToPage();
      const wire = decodeSnapshot(plain, this.#space);
      await yieldToPage();
      return await verifySnapshot(this.#sealer, this.#space, wire, v);
    } catch (e) {
      // A bad snapshot costs only speed: report it and fall back to pulling every commit.
      report(e instanceof ShoalError ? e : snapshotError(String((e as Error)?.message ?? e)));
      return "none";
    }
  }

  /** A snapshot covering `total` commits is in place (imported or stored). */
  noteCovered(total: number): void {
    if (total <= this.#total) return;
    this.#total = total;
    // Remembered for the next start; a failed write costs at most one snapshot published again.
    this.#coverage?.raise(total).catch(() => {});
  }

  /** Whether the policy wants a snapshot now, given what this device holds. */
  async due(ours: Record<string, number>): Promise<boolean> {
    if (this.policy.publishEvery <= 0 || this.#publishing) return false;
    if (!this.#coverageRead && this.#coverage) {
      this.#coverageRead = true;
      this.#total = Math.max(this.#total, await this.#coverage.read().catch(() => 0));
    }
    return vectorTotal(ours) - this.#total >= publishThreshold(this.policy, this.#total);
  }

  /**
   * Seals and sends a snapshot; returns (wrapped, since `await` would flatten it) the promise of the
   * relay's answer, which arrives later through `stored`/`refused`.
   */
  async publish(content: SnapshotContent): Promise<{ stored: Promise<boolean> }> {
    const wire = await snapshotWire(this.#sealer, content, this.#device);
    const sealed = await sealSnapshot(this.#spaceKey, this.#space, content.vector, encodeSnapshot(wire));
    return this.publishSealed(content.vector, sealed);
  }

  /** Sends an already sealed snapshot (a compacted one) in parts; as `publish`. */
  publishSealed(v: Record<string, number>, sealed: Uint8Array): { stored: Promise<boolean> } {
    const vector: VectorEntry[] = Object.entries(v).map(([d, seq]) => ({
      device: fromHex(d, 16),
      seq,
    }));
    const parts = Math.max(1, Math.ceil(sealed.length / SNAPSHOT_PART));
    const total = vectorTotal(v);
    const stored = new Promise<boolean>((resolve) => (this.#publishing = { resolve, total }));
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
    const about =
      m.code === "stale-snapshot" ||
      ((m.code === "gap" || m.code === "membership" || m.code === "quota") && !m.device);
    if (!this.#publishing || !about) return false;
    // The relay keeps a snapshot newer for some device than this one, or has no room for it: counted as
    // covering as much, so the next try waits for the policy's threshold instead of following every
    // acknowledgement (a space at its quota would otherwise upload a snapshot after each commit).
    if (m.code === "stale-snapshot" || m.code === "quota") this.noteCovered(this.#publishing.total);
    this.#settle(false);
    return true;
  }

  /** The connection closed: nothing more will answer. */
  reset(): void {
    this.#incoming = null;
    this.#incomingBytes = 0;
    this.#settle(false);
  }

  #settle(stored: boolean): void {
    this.#publishing?.resolve(stored);
    this.#publishing = null;
  }
}
