import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { disposeAllRedis, RedisProcess } from "../../test/redis-process.ts";
import { makeChain, randomId, sha256, testDevice } from "./commit-fixtures.ts";
import { incomingCommit } from "./incoming-commit.ts";
import { durabilityProblem, RedisStore } from "./redis-store.ts";
import { runStoreContract } from "./store-contract.ts";

// One durable redis-server for the file; each store gets its own key prefix, so every contract case
// starts from an empty store (its totals included) without flushing anything.
let redis: RedisProcess;
let n = 0;
beforeAll(async () => {
  redis = await RedisProcess.start();
});
afterAll(async () => {
  await disposeAllRedis();
});

const openStore = () => RedisStore.open({ url: redis.url, keyPrefix: `contract${n++}:` });

runStoreContract("RedisStore", async () => ({ store: await openStore() }));

describe("RedisStore specifics", () => {
  it("keeps every key of a space under its hash tag", async () => {
    const store = await RedisStore.open({ url: redis.url, keyPrefix: "tags:" });
    const client = new Redis(redis.url);
    try {
      const space = randomId();
      await store.registerSpace(space, sha256(new Uint8Array([1])));
      const device = testDevice();
      await store.append(
        space,
        makeChain(space, device, 2).map((c) => incomingCommit(c)),
        {
          quotaBytes: 1 << 20,
        },
      );
      expect(await store.putSnapshot(space, new Map([[device, 2]]), new Uint8Array(10))).toBe("stored");
      const keys = (await client.keys("tags:*")).sort();
      expect(keys).toEqual([
        "tags:stats",
        `tags:{${space}}:bytes`,
        `tags:{${space}}:heads`,
        `tags:{${space}}:idx`,
        `tags:{${space}}:meta`,
        `tags:{${space}}:snap`,
      ]);
    } finally {
      client.disconnect();
      await store.close();
    }
  });

  it("stores each commit once when two stores append the same chain at once", async () => {
    const a = await RedisStore.open({ url: redis.url, keyPrefix: "race:" });
    const b = await RedisStore.open({ url: redis.url, keyPrefix: "race:" });
    try {
      const space = randomId();
      const device = testDevice();
      await a.registerSpace(space, sha256(new Uint8Array([1])));
      const chain = makeChain(space, device, 40).map((c) => incomingCommit(c));
      // Both "instances" race to append each commit: exactly one stores it, the other sees a duplicate.
      for (const c of chain) {
        const [ra, rb] = await Promise.all([a, b].map((s) => s.append(space, [c], { quotaBytes: 1 << 30 })));
        expect(ra!.stored.length + rb!.stored.length).toBe(1);
        expect(ra!.duplicates + rb!.duplicates).toBe(1);
      }
      expect([...(await b.vector(space))]).toEqual([[device, 40]]);
      expect(await a.usage(space)).toEqual({
        commits: 40,
        bytes: chain.reduce((k, c) => k + c.bytes.length, 0),
      });
      const all = await b.read(space, new Map(), { maxBytes: 1 << 30, maxCount: 1000 });
      expect(all.commits.length).toBe(40);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it("keeps the dominating snapshot when two stores put snapshots at once", async () => {
    const a = await RedisStore.open({ url: redis.url, keyPrefix: "snaprace:" });
    const b = await RedisStore.open({ url: redis.url, keyPrefix: "snaprace:" });
    try {
      const space = randomId();
      const device = testDevice();
      await a.registerSpace(space, sha256(new Uint8Array([1])));
      const chain = makeChain(space, device, 20).map((c) => incomingCommit(c));
      await a.append(space, chain, { quotaBytes: 1 << 30 });
      for (let seq = 2; seq <= 20; seq += 2) {
        const [older, newer] = await Promise.all([
          a.putSnapshot(space, new Map([[device, seq - 1]]), new Uint8Array(100).fill(seq - 1)),
          b.putSnapshot(space, new Map([[device, seq]]), new Uint8Array(200).fill(seq)),
        ]);
        expect(newer).toBe("stored");
        expect(["stored", "stale"]).toContain(older);
        const got = await a.getSnapshot(space);
        expect([...got!.vector]).toEqual([[device, seq]]);
        expect(got!.bytes.length).toBe(200);
        expect(got!.bytes[0]).toBe(seq);
      }
      const commitBytes = chain.reduce((n, c) => n + c.bytes.length, 0);
      expect(await a.usage(space)).toEqual({ commits: 20, bytes: commitBytes + 200 });
    } finally {
      await a.close();
      await b.close();
    }
  });

  it("never lets concurrent appends of different devices exceed the quota", async () => {
    const a = await RedisStore.open({ url: redis.url, keyPrefix: "quota:" });
    const b = await RedisStore.open({ url: redis.url, keyPrefix: "quota:" });
    try {
      const space = randomId();
      await a.registerSpace(space, sha256(new Uint8Array([1])));
      const chains = [testDevice(), testDevice()].map((d) =>
        makeChain(space, d, 10, { bodyBytes: 100 }).map((c) => incomingCommit(c)),
      );
      const size = chains[0]![0]!.bytes.length;
      const quota = size * 7;
      await Promise.all(
        chains.map(async (chain, i) => {
          const store = i === 0 ? a : b;
          for (const c of chain) if ((await store.append(space, [c], { quotaBytes: quota })).refused) return;
        }),
      );
      expect((await a.usage(space)).bytes).toBe(quota);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it("refuses to open on a Redis that does not fsync every write, unless told to", async () => {
    const loose = await RedisProcess.start(["--appendonly", "yes", "--appendfsync", "everysec"]);
    try {
      await expect(RedisStore.open({ url: loose.url })).rejects.toThrow(/appendfsync is everysec/);
      const store = await RedisStore.open({ url: loose.url, allowUnsafe: true });
      await store.close();
      const client = new Redis(loose.url);
      await client.config("SET", "appendfsync", "always");
      expect(await durabilityProblem(client)).toBeUndefined();
      await client.config("SET", "appendonly", "no");
      expect(await durabilityProblem(client)).toMatch(/appendonly is no/);
      client.disconnect();
    } finally {
      await loose.dispose();
    }
  });

  it("fails fast, not hangs, while Redis is unreachable", async () => {
    const doomed = await RedisProcess.start();
    const errors: string[] = [];
    const store = await RedisStore.open({ url: doomed.url, onError: (op) => errors.push(op) });
    try {
      await doomed.stop("SIGKILL");
      await expect(store.stats()).rejects.toThrow();
      expect(errors).toContain("stats");
    } finally {
      await store.close();
      await doomed.dispose();
    }
  });
});
