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

// How long the relay-wide totals read from the store are trusted before they are read again. Writes of
// this instance are added at once; other instances' writes (Redis) are seen within this time.
const STATS_TTL_MS = 2000;

/**
 * A `RelayStore` with a relay-wide byte cap (`maxStoreBytes`): each write gets, as its space quota,
 * the smaller of the space's own quota and what the space holds plus the room left in the whole store,
 * so the adapter's own atomic quota check enforces both, and duplicates still cost nothing. A write
 * refused because of the relay-wide cap (not the space's) is reported as `"store-full"`. The totals
 * come from `stats()` (cached briefly), so concurrent writes may overshoot the cap by at most the
 * writes in flight (a frame each).
 *
 * @example
 * const store = new CappedStore(new SqliteStore(file), 16 << 30);
 */
export class CappedStore implements RelayStore {
  readonly #inner: RelayStore;
  readonly #maxBytes: number;
  #total: { bytes: number; spaces: number; at: number } | undefined;

  constructor(inner: RelayStore, maxBytes: number) {
    this.#inner = inner;
    this.#maxBytes = maxBytes;
  }

  /** Bytes and spaces held by the whole store (cached up to 2 s, plus this instance's writes since). */
  async totals(): Promise<{ bytes: number; spaces: number }> {
    const now = performance.now();
    if (!this.#total || now - this.#total.at > STATS_TTL_MS) {
      const stats = await this.#inner.stats();
      this.#total = { bytes: stats.bytes, spaces: stats.spaces, at: now };
    }
    return this.#total;
  }

  async registerSpace(space: string, tokenHash: Uint8Array, creator?: Uint8Array): Promise<Uint8Array> {
    const known = await this.#inner.tokenHash(space);
    const stored = await this.#inner.registerSpace(space, tokenHash, creator);
    if (!known && this.#total) this.#total.spaces += 1;
    return stored;
  }

  tokenHash(space: string): Promise<Uint8Array | undefined> {
    return this.#inner.tokenHash(space);
  }

  creator(space: string): Promise<Uint8Array | undefined> {
    return this.#inner.creator(space);
  }

  membershipOps(space: string): Promise<string[]> {
    return this.#inner.membershipOps(space);
  }

  vector(space: string): Promise<Map<string, number>> {
    return this.#inner.vector(space);
  }

  async append(
    space: string,
    commits: readonly IncomingCommit[],
    options: AppendOptions,
  ): Promise<AppendResult> {
    const { quota, capped } = await this.#quota(space, options.quotaBytes);
    const result = await this.#inner.append(space, commits, {
      ...options,
      quotaBytes: quota ?? options.quotaBytes,
    });
    if (this.#total) this.#total.bytes += result.stored.reduce((n, c) => n + c.bytes.length, 0);
    if (result.refused?.code === "quota" && capped)
      result.refused = { ...result.refused, code: "store-full" };
    return result;
  }

  /** Same length as the commit it replaces (the rule demands it): nothing to count against the cap. */
  replace(space: string, commit: IncomingCommit): Promise<ReplaceResult> {
    return this.#inner.replace(space, commit);
  }

  read(space: string, since: ReadonlyMap<string, number>, options: ReadOptions): Promise<ReadResult> {
    return this.#inner.read(space, since, options);
  }

  async putSnapshot(
    space: string,
    vector: ReadonlyMap<string, number>,
    bytes: Uint8Array,
    options: SnapshotOptions = {},
  ): Promise<SnapshotVerdict> {
    const before = (await this.#inner.usage(space)).bytes;
    const { quota, capped } = await this.#quota(space, options.quotaBytes, before);
    const verdict = await this.#inner.putSnapshot(space, vector, bytes, { ...options, quotaBytes: quota });
    if (verdict === "stored" && this.#total)
      this.#total.bytes += (await this.#inner.usage(space)).bytes - before;
    return verdict === "quota" && capped ? "store-full" : verdict;
  }

  getSnapshot(space: string): Promise<StoredSnapshot | undefined> {
    return this.#inner.getSnapshot(space);
  }

  async compact(space: string, vector: ReadonlyMap<string, number>): Promise<CompactResult> {
    const out = await this.#inner.compact(space, vector);
    if (this.#total) this.#total.bytes -= out.bytes;
    return out;
  }

  usage(space: string): Promise<{ commits: number; bytes: number }> {
    return this.#inner.usage(space);
  }

  stats(): Promise<{ spaces: number; commits: number; bytes: number }> {
    return this.#inner.stats();
  }

  close(): Promise<void> {
    return this.#inner.close();
  }

  /** The quota to hand the adapter, and whether it is the relay-wide cap rather than the space's own. */
  async #quota(
    space: string,
    spaceQuota: number | undefined,
    used?: number,
  ): Promise<{ quota: number | undefined; capped: boolean }> {
    const room = this.#maxBytes - (await this.totals()).bytes;
    // The space's own quota is the smaller one whenever the store has that much room left, whatever
    // the space holds: then its usage need not be read (a store read per upload, on the hot path).
    if (spaceQuota !== undefined && spaceQuota <= room) return { quota: spaceQuota, capped: false };
    const held = used ?? (await this.#inner.usage(space)).bytes;
    const storeQuota = held + Math.max(0, room);
    if (spaceQuota !== undefined && spaceQuota <= storeQuota) return { quota: spaceQuota, capped: false };
    return { quota: storeQuota, capped: true };
  }
}
