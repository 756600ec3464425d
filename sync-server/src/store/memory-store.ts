import { selectForRead, type ReadCandidate } from "./select-for-read.ts";
import { replaceRule } from "./replace-rule.ts";
import { sequenceVerdict } from "./sequence-rule.ts";
import { snapshotRefusal } from "./snapshot-rule.ts";
import { covers, isMembershipCommitBytes } from "./compact-rule.ts";
import type {
  AppendOptions,
  AppendResult,
  CompactResult,
  IncomingCommit,
  ReadOptions,
  ReadResult,
  RelayStore,
  ReplaceResult,
  SnapshotOptions,
  SnapshotVerdict,
  StoredSnapshot,
} from "./store.ts";

interface MemoryCommit {
  order: number;
  hash: Uint8Array;
  bytes: Uint8Array;
}

interface MemorySpace {
  tokenHash: Uint8Array;
  creator: Uint8Array | undefined;
  bytes: number;
  commits: number;
  nextOrder: number;
  /** Device hex -> its commits, index i holding seq i + 1. */
  devices: Map<string, MemoryCommit[]>;
  snapshot: StoredSnapshot | undefined;
  /** The membership log: operation texts in arrival order. */
  ops: string[];
}

/**
 * A `RelayStore` in process memory, for tests and throwaway relays: nothing survives the process.
 *
 * @example
 * const app = createApp({ store: new MemoryStore() });
 */
export class MemoryStore implements RelayStore {
  readonly #spaces = new Map<string, MemorySpace>();
  #closed = false;

  async registerSpace(space: string, tokenHash: Uint8Array, creator?: Uint8Array): Promise<Uint8Array> {
    this.#check();
    let s = this.#spaces.get(space);
    if (!s) {
      s = {
        tokenHash: tokenHash.slice(),
        creator: creator?.slice(),
        bytes: 0,
        commits: 0,
        nextOrder: 1,
        devices: new Map(),
        snapshot: undefined,
        ops: [],
      };
      this.#spaces.set(space, s);
    }
    return s.tokenHash.slice();
  }

  async tokenHash(space: string): Promise<Uint8Array | undefined> {
    this.#check();
    return this.#spaces.get(space)?.tokenHash.slice();
  }

  async creator(space: string): Promise<Uint8Array | undefined> {
    this.#check();
    return this.#spaces.get(space)?.creator?.slice();
  }

  async membershipOps(space: string): Promise<string[]> {
    this.#check();
    return [...(this.#spaces.get(space)?.ops ?? [])];
  }

  async vector(space: string): Promise<Map<string, number>> {
    this.#check();
    const out = new Map<string, number>();
    for (const [device, list] of this.#spaces.get(space)?.devices ?? []) out.set(device, list.length);
    return out;
  }

  async append(
    space: string,
    commits: readonly IncomingCommit[],
    options: AppendOptions,
  ): Promise<AppendResult> {
    this.#check();
    const s = this.#spaces.get(space);
    if (!s) throw new Error(`Space ${space} is not registered.`);
    const result: AppendResult = { stored: [], duplicates: 0, heads: new Map() };
    for (const [index, c] of commits.entries()) {
      const list = s.devices.get(c.device) ?? [];
      const head = { seq: list.length, hash: list.at(-1)?.hash };
      const verdict = sequenceVerdict(head, c, (seq) => list[seq - 1]?.hash);
      if (verdict === "append" && s.bytes + c.bytes.length > options.quotaBytes) {
        result.refused = { device: c.device, seq: c.seq, code: "quota", index };
        break;
      }
      if (verdict === "append") {
        // Copy: the caller's bytes may be a view into a reused network buffer.
        list.push({ order: s.nextOrder++, hash: c.hash.slice(), bytes: c.bytes.slice() });
        s.devices.set(c.device, list);
        s.bytes += c.bytes.length;
        s.commits += 1;
        if (c.membershipOp !== undefined) s.ops.push(c.membershipOp);
        result.stored.push(c);
      } else if (verdict === "duplicate") {
        result.duplicates += 1;
      } else {
        result.refused = { device: c.device, seq: c.seq, code: verdict, index };
        break;
      }
      result.heads.set(c.device, list.length);
    }
    return result;
  }

  async replace(space: string, commit: IncomingCommit): Promise<ReplaceResult> {
    this.#check();
    const s = this.#spaces.get(space);
    if (!s) throw new Error(`Space ${space} is not registered.`);
    const list = s.devices.get(commit.device) ?? [];
    const stored = list[commit.seq - 1];
    const verdict = replaceRule(list.length, stored?.bytes, commit);
    if (verdict === "replace" && stored) {
      // Same length, so usage is unchanged; the arrival order stays the original's.
      list[commit.seq - 1] = { order: stored.order, hash: commit.hash.slice(), bytes: commit.bytes.slice() };
      return { verdict: "replaced", head: list.length };
    }
    return { verdict: verdict === "replace" ? "conflict" : verdict, head: list.length };
  }

  async read(space: string, since: ReadonlyMap<string, number>, options: ReadOptions): Promise<ReadResult> {
    this.#check();
    const runs: ReadCandidate<Uint8Array>[][] = [];
    for (const [device, list] of this.#spaces.get(space)?.devices ?? []) {
      const from = since.get(device) ?? 0;
      runs.push(
        list
          .slice(from)
          .filter((c) => c.bytes.length > 0) // compacted
          .map((c) => ({ order: c.order, size: c.bytes.length, ref: c.bytes })),
      );
    }
    const { picked, bytes, more } = selectForRead(runs, options.maxBytes, options.maxCount);
    return { commits: picked.map((c) => c.ref.slice()), bytes, more };
  }

  async putSnapshot(
    space: string,
    vector: ReadonlyMap<string, number>,
    bytes: Uint8Array,
    options: SnapshotOptions = {},
  ): Promise<SnapshotVerdict> {
    this.#check();
    const s = this.#spaces.get(space);
    if (!s) throw new Error(`Space ${space} is not registered.`);
    const refusal = snapshotRefusal(vector, (d) => s.devices.get(d)?.length ?? 0, s.snapshot?.vector);
    if (refusal) return refusal;
    const bytesAfter = s.bytes - (s.snapshot?.bytes.length ?? 0) + bytes.length;
    if (options.quotaBytes !== undefined && bytesAfter > options.quotaBytes) return "quota";
    s.snapshot = { vector: new Map(vector), bytes: bytes.slice() };
    s.bytes = bytesAfter;
    return "stored";
  }

  async getSnapshot(space: string): Promise<StoredSnapshot | undefined> {
    this.#check();
    const snapshot = this.#spaces.get(space)?.snapshot;
    return snapshot && { vector: new Map(snapshot.vector), bytes: snapshot.bytes.slice() };
  }

  async compact(space: string, vector: ReadonlyMap<string, number>): Promise<CompactResult> {
    this.#check();
    const s = this.#spaces.get(space);
    if (!s) throw new Error(`Space ${space} is not registered.`);
    const out: CompactResult = { commits: 0, bytes: 0, snapshot: false };
    for (const [device, upTo] of vector) {
      const list = s.devices.get(device) ?? [];
      for (let i = 0; i < Math.min(upTo, list.length); i++) {
        const c = list[i]!;
        if (c.bytes.length === 0 || isMembershipCommitBytes(c.bytes)) continue;
        out.commits += 1;
        out.bytes += c.bytes.length;
        list[i] = { order: c.order, hash: c.hash, bytes: new Uint8Array(0) };
      }
    }
    if (s.snapshot && !covers(s.snapshot.vector, vector)) {
      out.bytes += s.snapshot.bytes.length;
      out.snapshot = true;
      s.snapshot = undefined;
    }
    s.bytes -= out.bytes;
    s.commits -= out.commits;
    return out;
  }

  async usage(space: string): Promise<{ commits: number; bytes: number }> {
    this.#check();
    const s = this.#spaces.get(space);
    return { commits: s?.commits ?? 0, bytes: s?.bytes ?? 0 };
  }

  async stats(): Promise<{ spaces: number; commits: number; bytes: number }> {
    this.#check();
    let commits = 0;
    let bytes = 0;
    for (const s of this.#spaces.values()) {
      commits += s.commits;
      bytes += s.bytes;
    }
    return { spaces: this.#spaces.size, commits, bytes };
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#spaces.clear();
  }

  #check(): void {
    if (this.#closed) throw new Error("The store is closed.");
  }
}
