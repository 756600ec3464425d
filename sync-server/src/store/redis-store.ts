import type { Redis } from "ioredis";
import { fromHex, toHex } from "@shoal/client/protocol";
import { createRedisClient, reachableNodes, type RedisClient } from "./redis-client.ts";
import { parseRedisTarget } from "./redis-target.ts";
import { selectForRead, type ReadCandidate } from "./select-for-read.ts";
import { replaceRule } from "./replace-rule.ts";
import { sequenceVerdict, type DeviceHead } from "./sequence-rule.ts";
import { decodeSnapshotVector, encodeSnapshotVector } from "./snapshot-rule.ts";
import { covers } from "./compact-rule.ts";
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

/** Options of `RedisStore.open`. */
export interface RedisStoreOptions {
  /**
   * `redis://[user:password@]host:port/db` (or `rediss://` for TLS) for one server;
   * `redis+cluster://[user:password@]host:port,host:port` (or `rediss+cluster://`) for a Redis Cluster.
   */
  url: string;
  /** Prepended to every key, so several relays (or tests) can share one Redis. Default `shoal:`. */
  keyPrefix?: string;
  /**
   * Start even when Redis does not fsync each write before replying (see `durabilityProblem`). Acks
   * then no longer promise that a commit survives a Redis crash: for development only.
   */
  allowUnsafe?: boolean;
  /** Called once per failed Redis operation (for `/metrics`); `operation` is a fixed name. */
  onError?: (operation: RedisOperation) => void;
}

/** Operation names reported to `onError`: a closed set, safe as a metrics label. */
export type RedisOperation =
  "connection" | "register" | "append" | "read" | "snapshot" | "stats" | "durability";

// Snapshot for `append`: registration, bytes used, the head (seq and its index entry) of each device of
// the batch, and the index entry stored at each commit's (device, seq) if any. Missing values are ""
// because a Lua nil would cut the returned array short.
const SNAPSHOT_LUA = `
local used = redis.call('HGET', KEYS[1], 'bytes') or '0'
local heads, at, seen = {}, {}, {}
for i = 1, #ARGV, 2 do
  local device = ARGV[i]
  if not seen[device] then
    seen[device] = true
    local seq = redis.call('HGET', KEYS[2], device) or '0'
    local entry = ''
    if seq ~= '0' then entry = redis.call('HGET', KEYS[3], device .. ':' .. seq) or '' end
    table.insert(heads, device)
    table.insert(heads, seq)
    table.insert(heads, entry)
  end
  table.insert(at, redis.call('HGET', KEYS[3], device .. ':' .. ARGV[i + 1]) or '')
end
return { redis.call('HEXISTS', KEYS[1], 'token'), used, heads, at }`;

// Compare-and-append: writes the batch only if every device head the caller decided on is unchanged and
// the space still has room, so the sequence rule (decided in TypeScript by sequenceVerdict, shared with
// the other stores) holds although several relay instances append to one space at once. Returns 0 to
// make the caller read a fresh snapshot and decide again. KEYS: meta, heads, idx, bytes, ops. ARGV:
// quota, h, h x (device, seq), then 6 x (device, seq, size, hashHex, bytes, op) per commit, `op` the
// membership operation's text ("" for a data commit), appended to the space's log in the same script.
const APPEND_LUA = `
local h = tonumber(ARGV[2])
for i = 0, h - 1 do
  if (redis.call('HGET', KEYS[2], ARGV[3 + 2 * i]) or '0') ~= ARGV[4 + 2 * i] then return 0 end
end
local first = 3 + 2 * h
local count = (#ARGV - first + 1) / 6
local added = 0
for i = 0, count - 1 do added = added + tonumber(ARGV[first + 6 * i + 2]) end
if tonumber(redis.call('HGET', KEYS[1], 'bytes') or '0') + added > tonumber(ARGV[1]) then return 0 end
local order = redis.call('HINCRBY', KEYS[1], 'order', count) - count
for i = 0, count - 1 do
  local b = first + 6 * i
  local field = ARGV[b] .. ':' .. ARGV[b + 1]
  redis.call('HSET', KEYS[3], field, string.format('%d:%s:%s', order + i + 1, ARGV[b + 2], ARGV[b + 3]))
  redis.call('HSET', KEYS[4], field, ARGV[b + 4])
  redis.call('HSET', KEYS[2], ARGV[b], ARGV[b + 1])
  if ARGV[b + 5] ~= '' then redis.call('RPUSH', KEYS[5], ARGV[b + 5]) end
end
redis.call('HINCRBY', KEYS[1], 'bytes', added)
redis.call('HINCRBY', KEYS[1], 'commits', count)
return 1`;

// The snapshot rule of snapshot-rule.ts (gap, then stale, then quota) and the replacing write, in one
// script so that no append or other snapshot can come between the checks and the write. KEYS: meta,
// heads, snap. ARGV: quota ("" for none), vector text, size, bytes, then (device, seq) per vector
// entry. Returns { verdict, bytes added to the space }.
const PUT_SNAPSHOT_LUA = `
if redis.call('HEXISTS', KEYS[1], 'token') ~= 1 then return { 'unregistered', 0 } end
local new = {}
for i = 5, #ARGV, 2 do
  local seq = tonumber(ARGV[i + 1])
  if seq > tonumber(redis.call('HGET', KEYS[2], ARGV[i]) or '0') then return { 'gap', 0 } end
  new[ARGV[i]] = seq
end
local old = redis.call('HMGET', KEYS[3], 'vector', 'size')
if old[1] then
  for device, seq in string.gmatch(old[1], '(%x+):(%d+)') do
    if (new[device] or 0) < tonumber(seq) then return { 'stale', 0 } end
  end
end
local delta = tonumber(ARGV[3]) - tonumber(old[2] or '0')
if ARGV[1] ~= '' and tonumber(redis.call('HGET', KEYS[1], 'bytes') or '0') + delta > tonumber(ARGV[1]) then
  return { 'quota', 0 }
end
redis.call('HSET', KEYS[3], 'vector', ARGV[2], 'size', ARGV[3], 'bytes', ARGV[4])
redis.call('HINCRBY', KEYS[1], 'bytes', delta)
return { 'stored', delta }`;

// Compare-and-replace for `replace`: overwrites one commit's index entry and bytes only if the device's
// head and that index entry are still what the caller decided on (replaceRule, shared with the other
// stores). KEYS: meta, heads, idx, bytes. ARGV: device, seq, old entry, new entry, bytes. Returns 1
// when written, 0 to make the caller read again, -1 for an unregistered space.
// Compaction (see `RelayStore.compact`): KEYS meta, idx, bytes, snap; ARGV[1] the snapshot vector text
// to drop ('' for none), then device, seq pairs. A data commit's bytes go and its index entry's size
// becomes 0 (its order and hash stay); a membership commit (header epoch 0xffffffff) stays whole.
const COMPACT_LUA = `
if redis.call('HEXISTS', KEYS[1], 'token') ~= 1 then return { -1, 0, 0 } end
local n, freed, dropped = 0, 0, 0
for i = 2, #ARGV, 2 do
  local device = ARGV[i]
  for seq = 1, tonumber(ARGV[i + 1]) do
    local field = device .. ':' .. seq
    local entry = redis.call('HGET', KEYS[2], field)
    if entry then
      local order, size, hash = string.match(entry, '^(%d+):(%d+):(%x+)$')
      if size and size ~= '0' then
        local b = redis.call('HGET', KEYS[3], field) or ''
        local e1, e2, e3, e4 = string.byte(b, 42, 45)
        if not (e1 == 255 and e2 == 255 and e3 == 255 and e4 == 255) then
          redis.call('HDEL', KEYS[3], field)
          redis.call('HSET', KEYS[2], field, order .. ':0:' .. hash)
          n = n + 1
          freed = freed + tonumber(size)
        end
      end
    end
  end
end
if ARGV[1] ~= '' and redis.call('HGET', KEYS[4], 'vector') == ARGV[1] then
  freed = freed + tonumber(redis.call('HGET', KEYS[4], 'size') or '0')
  redis.call('DEL', KEYS[4])
  dropped = 1
end
redis.call('HINCRBY', KEYS[1], 'bytes', string.format('%d', -freed))
redis.call('HINCRBY', KEYS[1], 'commits', string.format('%d', -n))
return { n, freed, dropped }`;

const REPLACE_LUA = `
if redis.call('HEXISTS', KEYS[1], 'token') ~= 1 then return -1 end
if (redis.call('HGET', KEYS[2], ARGV[1]) or '0') ~= ARGV[2] then return 0 end
local field = ARGV[1] .. ':' .. ARGV[2]
if (redis.call('HGET', KEYS[3], field) or '') ~= ARGV[3] then return 0 end
redis.call('HSET', KEYS[3], field, ARGV[4])
redis.call('HSET', KEYS[4], field, ARGV[5])
return 1`;

// Compare-and-append fails only when another instance moved one of the same devices' heads (or the
// space's usage past the quota) between snapshot and write; a few rounds settle it.
const MAX_APPEND_ROUNDS = 16;

type SnapshotReply = [number, string, string[], string[]];

type ScriptedRedis = RedisClient & RedisScripts;

interface RedisScripts {
  shoalSnapshot(...args: (string | number)[]): Promise<SnapshotReply>;
  shoalAppend(...args: (string | number | Buffer)[]): Promise<number>;
  shoalPutSnapshot(...args: (string | number | Buffer)[]): Promise<[string, number]>;
  shoalReplace(...args: (string | number | Buffer)[]): Promise<number>;
  shoalCompact(...args: (string | number | Buffer)[]): Promise<number[]>;
}

/**
 * A `RelayStore` on Redis, so several relay instances share one store (docs/SCALING.md). Per space,
 * up to five hashes and a list whose keys carry the space id as a hash tag
 * (`shoal:{<space>}:meta|heads|idx|bytes|snap|ops`), so Redis Cluster keeps a space on one slot and its Lua scripts stay legal there:
 *
 * - `meta`: `token` (hex SHA-256 of the access token), `bytes`, `commits`, `order` (arrival counter);
 * - `heads`: device -> highest stored seq;
 * - `idx`: `<device>:<seq>` -> `<order>:<size>:<hashHex>`;
 * - `bytes`: `<device>:<seq>` -> the sealed commit;
 * - `snap` (only once a snapshot was stored): `vector` (`<device>:<seq>,...`), `size`, `bytes` (the
 *   sealed snapshot). Its size is part of `meta.bytes`, so it counts toward the quota;
 * - `ops` (a list, once a membership commit was stored): the membership log's operation texts in
 *   arrival order, pushed by the append script with their commits.
 *
 * Totals for `/metrics` live in `shoal:stats`, updated after each write (not atomically with it: a
 * crash in between only skews a gauge).
 *
 * Durability: `open` refuses a Redis that does not run `appendonly yes` with `appendfsync always`
 * (and `no-appendfsync-on-rewrite no`): then Redis fsyncs its AOF before it sends any reply, so a
 * resolved `append` has reached the disk and the relay may acknowledge it. The check runs again on
 * every reconnect; a Redis that turned unsafe makes every call fail until it is fixed.
 *
 * @example
 * const store = await RedisStore.open({ url: "redis://127.0.0.1:6379/0" });
 * await startRelay({ store });
 */
export class RedisStore implements RelayStore {
  readonly #client: ScriptedRedis;
  readonly #prefix: string;
  readonly #options: RedisStoreOptions;
  #unsafe: string | undefined;
  #closed = false;

  private constructor(client: ScriptedRedis, options: RedisStoreOptions) {
    this.#client = client;
    this.#options = options;
    this.#prefix = options.keyPrefix ?? "shoal:";
  }

  /**
   * Connects, checks the durability settings (throws when they are unsafe, unless `allowUnsafe`),
   * and returns the store.
   *
   * @example
   * const store = await RedisStore.open({ url: process.env.SHOAL_REDIS_URL! });
   */
  static async open(options: RedisStoreOptions): Promise<RedisStore> {
    const prefix = options.keyPrefix ?? "shoal:";
    if (/[{}]/.test(prefix))
      throw new Error("The Redis key prefix may not contain { or }: they delimit hash tags.");
    const client = createRedisClient(parseRedisTarget(options.url), "command") as ScriptedRedis;
    client.defineCommand("shoalSnapshot", { numberOfKeys: 3, lua: SNAPSHOT_LUA });
    client.defineCommand("shoalAppend", { numberOfKeys: 5, lua: APPEND_LUA });
    client.defineCommand("shoalPutSnapshot", { numberOfKeys: 3, lua: PUT_SNAPSHOT_LUA });
    client.defineCommand("shoalReplace", { numberOfKeys: 4, lua: REPLACE_LUA });
    client.defineCommand("shoalCompact", { numberOfKeys: 4, lua: COMPACT_LUA });
    const store = new RedisStore(client, options);
    // ioredis emits 'error' for every failed (re)connection; without a listener Node would print each.
    client.on("error", () => options.onError?.("connection"));
    try {
      await client.connect();
      const problem = await clientDurabilityProblem(client);
      if (problem && !options.allowUnsafe) {
        throw new Error(
          `Redis is not durable enough for acknowledgements: ${problem}. Run it with ` +
            "--appendonly yes --appendfsync always (docs/SCALING.md), or pass --allow-unsafe-redis for development.",
        );
      }
    } catch (e) {
      client.disconnect();
      throw e;
    }
    // Only now: a cluster client's connect() never settles when it must retry its ready check, and
    // commands sent from these listeners while it connects can make that check fail (ioredis 5.11).
    client.on("ready", () => void store.#recheck());
    // A cluster node joins the client's pool when the cluster first shows it or promotes a replica:
    // a new server to trust, so check it too.
    client.on("+node", () => void store.#recheck());
    return store;
  }

  async registerSpace(space: string, tokenHash: Uint8Array, creator?: Uint8Array): Promise<Uint8Array> {
    return this.#run("register", async () => {
      const meta = this.#key(space, "meta");
      const [[setErr, created], [getErr, stored]] = (await this.#client
        .pipeline()
        .hsetnx(meta, "token", toHex(tokenHash))
        .hget(meta, "token")
        .exec())! as [[Error | null, number], [Error | null, string]];
      if (setErr || getErr) throw setErr ?? getErr;
      if (created === 1) {
        // Only the registrant that won the token writes its key, so the two always belong together.
        if (creator) await this.#client.hset(meta, "creator", toHex(creator));
        await this.#client.hincrby(this.#statsKey(), "spaces", 1);
      }
      return fromHex(stored, 32);
    });
  }

  async tokenHash(space: string): Promise<Uint8Array | undefined> {
    return this.#run("read", async () => {
      const hex = await this.#client.hget(this.#key(space, "meta"), "token");
      return hex === null ? undefined : fromHex(hex, 32);
    });
  }

  async creator(space: string): Promise<Uint8Array | undefined> {
    return this.#run("read", async () => {
      const hex = await this.#client.hget(this.#key(space, "meta"), "creator");
      return hex === null ? undefined : fromHex(hex, 32);
    });
  }

  async membershipOps(space: string): Promise<string[]> {
    return this.#run("read", () => this.#client.lrange(this.#key(space, "ops"), 0, -1));
  }

  async vector(space: string): Promise<Map<string, number>> {
    return this.#run("read", async () => {
      const heads = await this.#client.hgetall(this.#key(space, "heads"));
      return new Map(Object.entries(heads).map(([device, seq]) => [device, Number(seq)]));
    });
  }

  async append(
    space: string,
    commits: readonly IncomingCommit[],
    options: AppendOptions,
  ): Promise<AppendResult> {
    return this.#run("append", async () => {
      for (let round = 0; round < MAX_APPEND_ROUNDS; round++) {
        const attempt = await this.#tryAppend(space, commits, options);
        if (attempt) return attempt;
      }
      throw new Error(`Could not append to space ${space}: too much contention.`);
    });
  }

  /** One snapshot-decide-write round; `undefined` when another writer got in between. */
  async #tryAppend(
    space: string,
    commits: readonly IncomingCommit[],
    options: AppendOptions,
  ): Promise<AppendResult | undefined> {
    const keys = [this.#key(space, "meta"), this.#key(space, "heads"), this.#key(space, "idx")];
    const [registered, usedText, headList, atList] = await this.#client.shoalSnapshot(
      ...keys,
      ...commits.flatMap((c) => [c.device, c.seq]),
    );
    if (registered !== 1) throw new Error(`Space ${space} is not registered.`);
    const heads = new Map<string, DeviceHead>();
    const expected: (string | number)[] = [];
    for (let i = 0; i < headList.length; i += 3) {
      const seq = Number(headList[i + 1]);
      heads.set(headList[i]!, { seq, hash: seq > 0 ? entryHash(headList[i + 2]!) : undefined });
      expected.push(headList[i]!, headList[i + 1]!);
    }
    // Hashes appended earlier in this very batch, so a duplicate inside one frame is recognised too.
    const batchHashes = new Map<string, Uint8Array>();
    const result: AppendResult = { stored: [], duplicates: 0, heads: new Map() };
    let used = Number(usedText);
    for (const [index, c] of commits.entries()) {
      const head = heads.get(c.device)!;
      const verdict = sequenceVerdict(head, c, (seq) => {
        const local = batchHashes.get(`${c.device}:${seq}`);
        if (local) return local;
        return seq === c.seq && atList[index] ? entryHash(atList[index]!) : undefined;
      });
      if (verdict === "append" && used + c.bytes.length > options.quotaBytes) {
        result.refused = { device: c.device, seq: c.seq, code: "quota", index };
        break;
      }
      if (verdict === "append") {
        head.seq = c.seq;
        head.hash = c.hash;
        batchHashes.set(`${c.device}:${c.seq}`, c.hash);
        used += c.bytes.length;
        result.stored.push(c);
      } else if (verdict === "duplicate") {
        result.duplicates += 1;
      } else {
        result.refused = { device: c.device, seq: c.seq, code: verdict, index };
        break;
      }
      result.heads.set(c.device, head.seq);
    }
    if (result.stored.length === 0) return result;
    const written = await this.#client.shoalAppend(
      ...keys,
      this.#key(space, "bytes"),
      this.#key(space, "ops"),
      options.quotaBytes,
      expected.length / 2,
      ...expected,
      ...result.stored.flatMap((c) => [
        c.device,
        c.seq,
        c.bytes.length,
        toHex(c.hash),
        Buffer.from(c.bytes.buffer, c.bytes.byteOffset, c.bytes.byteLength),
        c.membershipOp ?? "",
      ]),
    );
    if (written !== 1) return undefined;
    const added = result.stored.reduce((n, c) => n + c.bytes.length, 0);
    // The commits are durable already: the ack waits neither for this gauge update (a second fsync)
    // nor for its success.
    this.#client
      .pipeline()
      .hincrby(this.#statsKey(), "commits", result.stored.length)
      .hincrby(this.#statsKey(), "bytes", added)
      .exec()
      .catch(() => this.#options.onError?.("stats"));
    return result;
  }

  async replace(space: string, commit: IncomingCommit): Promise<ReplaceResult> {
    return this.#run("append", async () => {
      const keys = [
        this.#key(space, "meta"),
        this.#key(space, "heads"),
        this.#key(space, "idx"),
        this.#key(space, "bytes"),
      ];
      const field = `${commit.device}:${commit.seq}`;
      for (let round = 0; round < MAX_APPEND_ROUNDS; round++) {
        const [headText, entry, stored] = await Promise.all([
          this.#client.hget(keys[1]!, commit.device),
          this.#client.hget(keys[2]!, field),
          this.#client.hgetBuffer(keys[3]!, field),
        ]);
        const head = Number(headText ?? 0);
        const verdict = replaceRule(head, stored === null ? undefined : new Uint8Array(stored), commit);
        if (verdict !== "replace") {
          if (!(await this.#client.hexists(keys[0]!, "token")))
            throw new Error(`Space ${space} is not registered.`);
          return { verdict, head };
        }
        // Same order and size as the damaged copy: only the hash (and the bytes) change.
        const kept = entry!.slice(0, entry!.lastIndexOf(":"));
        const written = await this.#client.shoalReplace(
          ...keys,
          commit.device,
          String(head),
          entry!,
          `${kept}:${toHex(commit.hash)}`,
          Buffer.from(commit.bytes.buffer, commit.bytes.byteOffset, commit.bytes.byteLength),
        );
        if (written === -1) throw new Error(`Space ${space} is not registered.`);
        if (written === 1) return { verdict: "replaced", head };
      }
      throw new Error(`Could not replace in space ${space}: too much contention.`);
    });
  }

  async read(space: string, since: ReadonlyMap<string, number>, options: ReadOptions): Promise<ReadResult> {
    return this.#run("read", async () => {
      const idx = this.#key(space, "idx");
      // Heads first: everything at or below a head is immutable, so the reads below need no lock.
      const heads = await this.#client.hgetall(this.#key(space, "heads"));
      // Per device, from where to read and up to its head; runs fill in windows, since compacted
      // commits (index size 0) are skipped and a window may hold only those.
      const cursor = new Map<string, { next: number; head: number; run: ReadCandidate<string>[] }>();
      for (const [device, headText] of Object.entries(heads)) {
        const from = since.get(device) ?? 0;
        if (Number(headText) > from) cursor.set(device, { next: from + 1, head: Number(headText), run: [] });
      }
      if (cursor.size === 0) return { commits: [], bytes: 0, more: false };
      // One more than maxCount per device, so that `more` is exact when a run is cut short.
      const enough = options.maxCount + 1;
      for (;;) {
        const wanted: [string, string[]][] = [];
        for (const [device, c] of cursor) {
          if (c.run.length >= enough || c.next > c.head) continue;
          const to = Math.min(c.head, c.next + enough - c.run.length - 1);
          wanted.push([device, Array.from({ length: to - c.next + 1 }, (_, i) => `${device}:${c.next + i}`)]);
          c.next = to + 1;
        }
        if (wanted.length === 0) break;
        const pipeline = this.#client.pipeline();
        for (const [, fields] of wanted) pipeline.hmget(idx, ...fields);
        const replies = (await pipeline.exec())!;
        wanted.forEach(([device, fields], i) => {
          const [err, entries] = replies[i] as [Error | null, (string | null)[]];
          if (err) throw err;
          fields.forEach((field, j) => {
            const [order, size] = entries[j]!.split(":");
            if (size !== "0")
              cursor.get(device)!.run.push({ order: Number(order), size: Number(size), ref: field });
          });
        });
      }
      const runs = [...cursor.values()].map((c) => c.run);
      const { picked, bytes, more } = selectForRead(runs, options.maxBytes, options.maxCount);
      if (picked.length === 0) return { commits: [], bytes: 0, more };
      const blobs = await this.#client.hmgetBuffer(this.#key(space, "bytes"), ...picked.map((c) => c.ref));
      const commits = blobs.map((b) => {
        if (b === null) throw new Error(`Space ${space} lacks a commit its index lists.`);
        return new Uint8Array(b);
      });
      return { commits, bytes, more };
    });
  }

  async putSnapshot(
    space: string,
    vector: ReadonlyMap<string, number>,
    bytes: Uint8Array,
    options: SnapshotOptions = {},
  ): Promise<SnapshotVerdict> {
    return this.#run("snapshot", async () => {
      // One script: atomic, and with appendfsync always Redis fsyncs its AOF before replying.
      const [verdict, delta] = await this.#client.shoalPutSnapshot(
        this.#key(space, "meta"),
        this.#key(space, "heads"),
        this.#key(space, "snap"),
        options.quotaBytes === undefined ? "" : options.quotaBytes,
        encodeSnapshotVector(vector),
        bytes.length,
        Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength),
        ...[...vector].flatMap(([device, seq]) => [device, seq]),
      );
      if (verdict === "unregistered") throw new Error(`Space ${space} is not registered.`);
      if (verdict === "stored" && delta !== 0) {
        this.#client.hincrby(this.#statsKey(), "bytes", delta).catch(() => this.#options.onError?.("stats"));
      }
      return verdict as SnapshotVerdict;
    });
  }

  async compact(space: string, vector: ReadonlyMap<string, number>): Promise<CompactResult> {
    return this.#run("snapshot", async () => {
      const snap = await this.#client.hget(this.#key(space, "snap"), "vector");
      // A snapshot that does not cover the vector names commits that are gone: it goes too.
      const dropSnapshot = snap !== null && !covers(decodeSnapshotVector(snap), vector);
      // One script: atomic, and with appendfsync always Redis fsyncs its AOF before replying. The AOF
      // still holds the dropped bytes until Redis rewrites it: asked for below (PROTOCOL.md 12).
      const [n, freed, dropped] = (await this.#client.shoalCompact(
        this.#key(space, "meta"),
        this.#key(space, "idx"),
        this.#key(space, "bytes"),
        this.#key(space, "snap"),
        dropSnapshot ? snap : "",
        ...[...vector].flatMap(([device, seq]) => [device, seq]),
      )) as [number, number, number];
      if (n === -1) throw new Error(`Space ${space} is not registered.`);
      this.#client
        .pipeline()
        .hincrby(this.#statsKey(), "commits", -n)
        .hincrby(this.#statsKey(), "bytes", -freed)
        .exec()
        .catch(() => this.#options.onError?.("stats"));
      if (n > 0 || dropped)
        await this.#client.bgrewriteaof().catch(() => this.#options.onError?.("snapshot"));
      return { commits: n, bytes: freed, snapshot: dropped === 1 };
    });
  }

  async getSnapshot(space: string): Promise<StoredSnapshot | undefined> {
    return this.#run("read", async () => {
      // One HMGET: the vector and the bytes of one and the same snapshot.
      const [vector, bytes] = await this.#client.hmgetBuffer(this.#key(space, "snap"), "vector", "bytes");
      if (!vector || !bytes) return undefined;
      return { vector: decodeSnapshotVector(vector.toString("latin1")), bytes: new Uint8Array(bytes) };
    });
  }

  async usage(space: string): Promise<{ commits: number; bytes: number }> {
    return this.#run("read", async () => {
      const [bytes, commits] = await this.#client.hmget(this.#key(space, "meta"), "bytes", "commits");
      return { commits: Number(commits ?? 0), bytes: Number(bytes ?? 0) };
    });
  }

  async stats(): Promise<{ spaces: number; commits: number; bytes: number }> {
    return this.#run("stats", async () => {
      const [spaces, commits, bytes] = await this.#client.hmget(
        this.#statsKey(),
        "spaces",
        "commits",
        "bytes",
      );
      return { spaces: Number(spaces ?? 0), commits: Number(commits ?? 0), bytes: Number(bytes ?? 0) };
    });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#client.status === "ready") await this.#client.quit().catch(() => this.#client.disconnect());
    else this.#client.disconnect();
  }

  #key(space: string, part: "meta" | "heads" | "idx" | "bytes" | "snap" | "ops"): string {
    return `${this.#prefix}{${space}}:${part}`;
  }

  #statsKey(): string {
    return `${this.#prefix}stats`;
  }

  async #run<T>(operation: RedisOperation, fn: () => Promise<T>): Promise<T> {
    if (this.#closed) throw new Error("The store is closed.");
    if (this.#unsafe && !this.#options.allowUnsafe) {
      this.#options.onError?.("durability");
      throw new Error(`Redis is no longer durable enough: ${this.#unsafe}.`);
    }
    try {
      return await fn();
    } catch (e) {
      this.#options.onError?.(operation);
      throw e;
    }
  }

  /** After a reconnect, Redis may be another server or reconfigured: check again before trusting it. */
  async #recheck(): Promise<void> {
    try {
      this.#unsafe = await clientDurabilityProblem(this.#client);
    } catch {
      this.#options.onError?.("durability");
    }
  }
}

/**
 * Why this Redis cannot back acknowledgements, or `undefined` when it can: AOF on, fsync on every
 * write (`appendfsync always`, whose fsync Redis performs before it writes any reply), and no
 * skipping of that fsync during AOF rewrites.
 *
 * @example
 * const problem = await durabilityProblem(client); // "appendfsync is everysec, not always"
 */
export async function durabilityProblem(client: Redis): Promise<string | undefined> {
  let settings: string[];
  try {
    settings = (await client.config("GET", "append*")) as string[];
    settings.push(...((await client.config("GET", "no-appendfsync-on-rewrite")) as string[]));
  } catch {
    return "CONFIG GET is not allowed, so the AOF settings cannot be checked";
  }
  const value = new Map<string, string>();
  for (let i = 0; i + 1 < settings.length; i += 2) value.set(settings[i]!, settings[i + 1]!);
  if (value.get("appendonly") !== "yes")
    return `appendonly is ${value.get("appendonly") ?? "unset"}, not yes`;
  if (value.get("appendfsync") !== "always")
    return `appendfsync is ${value.get("appendfsync") ?? "unset"}, not always`;
  if (value.get("no-appendfsync-on-rewrite") === "yes") return "no-appendfsync-on-rewrite is yes, not no";
  return undefined;
}

/**
 * `durabilityProblem` of every server behind the client that answers (each node of a cluster, replicas
 * included, since any of them may become a master), naming the node; `undefined` when all are safe.
 */
async function clientDurabilityProblem(client: RedisClient): Promise<string | undefined> {
  const nodes = await reachableNodes(client);
  const problems = await Promise.all(nodes.map((node) => durabilityProblem(node)));
  const at = problems.findIndex((p) => p !== undefined);
  if (at < 0) return undefined;
  if (nodes.length === 1 && nodes[0] === client) return problems[at];
  return `${nodes[at]!.options.host}:${nodes[at]!.options.port}: ${problems[at]}`;
}

/** The SHA-256 out of an `idx` entry `<order>:<size>:<hashHex>`. */
function entryHash(entry: string): Uint8Array {
  return fromHex(entry.slice(entry.lastIndexOf(":") + 1), 32);
}
