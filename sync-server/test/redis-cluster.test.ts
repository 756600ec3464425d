import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { Database } from "@shoal/client";
import {
  closeAllDevices,
  openDevice,
  patientCollections,
  type Patient,
} from "../../client/test/relay-harness.ts";
import { waitFor } from "../../client/test/wait-for.ts";
import { RedisFanOut } from "../src/fan-out.ts";
import { makeChain, randomId, sha256, testDevice } from "../src/store/commit-fixtures.ts";
import { incomingCommit } from "../src/store/incoming-commit.ts";
import { RedisStore } from "../src/store/redis-store.ts";
import { runStoreContract } from "../src/store/store-contract.ts";
import { CLUSTER_UNAVAILABLE, RedisCluster } from "./redis-cluster-process.ts";
import { startRelayProcess, type RelayProcess } from "./relay-process.ts";

// One 3-master Redis Cluster (no replicas) for the file, started and stopped here; each store gets its
// own key prefix, so every contract case starts from an empty store without flushing anything.
let cluster: RedisCluster;
let n = 0;
const relays: RelayProcess[] = [];

describe.skipIf(CLUSTER_UNAVAILABLE)(
  CLUSTER_UNAVAILABLE ? `Redis Cluster (skipped: ${CLUSTER_UNAVAILABLE})` : "Redis Cluster, 3 masters",
  () => {
    beforeAll(async () => {
      cluster = await RedisCluster.start({ masters: 3 });
    });
    afterEach(async () => {
      await closeAllDevices();
      await Promise.all(relays.splice(0).map((p) => p.stop("SIGKILL")));
    });
    afterAll(async () => {
      await cluster?.dispose();
    });

    runStoreContract("RedisStore on a Redis Cluster", async () => ({
      store: await RedisStore.open({ url: cluster.url, keyPrefix: `contract${n++}:` }),
    }));

    it("keeps every key of a space in its slot, and spreads spaces over every master", async () => {
      const store = await RedisStore.open({ url: cluster.url, keyPrefix: "layout:" });
      try {
        const masters = new Set<number>();
        // Spaces until every master holds one (a few, as slots are spread evenly), at least six.
        for (let i = 0; i < 6 || (masters.size < 3 && i < 200); i++) {
          const space = randomId();
          const device = testDevice();
          await store.registerSpace(space, sha256(new Uint8Array([1])));
          const chain = makeChain(space, device, 2).map((c) => incomingCommit(c));
          await store.append(space, chain, { quotaBytes: 1 << 20 });
          expect(await store.putSnapshot(space, new Map([[device, 2]]), new Uint8Array(10))).toBe("stored");
          const { slot, master } = await cluster.shardOf(`layout:{${space}}:meta`);
          masters.add(master.port);
          const client = new Redis(master.port, "127.0.0.1");
          try {
            // The space's keys are all in its slot on its master (GETKEYSINSLOT lists only that slot).
            const keys = ((await client.cluster("GETKEYSINSLOT", slot, 100)) as string[])
              .filter((k) => k.includes(space))
              .sort();
            expect(keys).toEqual(
              ["bytes", "heads", "idx", "meta", "snap"].map((part) => `layout:{${space}}:${part}`),
            );
          } finally {
            client.disconnect();
          }
        }
        expect(masters.size).toBe(3);
      } finally {
        await store.close();
      }
    });

    it("fans out between two instances for spaces on every shard", async () => {
      const received: { space: string; commits: Uint8Array[] }[] = [];
      const [a, b] = await Promise.all([0, 1].map(() => RedisFanOut.open({ url: cluster.url })));
      try {
        b!.attach({ deliver: (space, commits) => received.push({ space, commits }), resync: () => {} });
        // Spaces until every master serves at least one, so each sharded subscriber is exercised.
        const spaces: string[] = [];
        const masters = new Set<number>();
        while (masters.size < 3 && spaces.length < 200) {
          const space = randomId();
          spaces.push(space);
          masters.add((await cluster.shardOf(`shoal:{${space}}:live`)).master.port);
        }
        expect(masters.size).toBe(3);
        await Promise.all(spaces.map((s) => b!.watch(s)));
        const sent = spaces.map((space) => ({ space, commits: [new Uint8Array(randomBytes(40))] }));
        for (const m of sent) a!.publish(m.space, m.commits);
        // A bounded poll: the messages arrive on three connections, with nothing to await per message.
        const deadline = Date.now() + 10_000;
        while (received.length < sent.length && Date.now() < deadline)
          await new Promise((r) => setTimeout(r, 20));
        expect(received.map((r) => r.space).sort()).toEqual(spaces.slice().sort());
        for (const m of sent) expect(received.find((r) => r.space === m.space)!.commits).toEqual(m.commits);
        expect(a!.healthy && b!.healthy).toBe(true);
      } finally {
        await Promise.all([a!.close(), b!.close()]);
      }
    });

    it("lets devices on two relay instances converge through the cluster, live", async () => {
      type Db = Database<{ patients: Patient }>;
      const count = (db: Db) => db.patients.live((c) => c.count());
      const [one, two] = await Promise.all(
        [0, 1].map(() => startRelayProcess(["--quiet", "--store", cluster.url])),
      );
      relays.push(one!, two!);
      const a = await openDevice<{ patients: Patient }>("a", patientCollections);
      const b = await openDevice<{ patients: Patient }>("b", patientCollections);
      const space = await a.db.createSpace({ name: "Cluster Clinic" });
      await b.db.join(await a.db.invite(space, "https://app.example/"));
      a.online(one!.url);
      b.online(two!.url);
      await waitFor(b.db.status, (s) => s.state === "synced", 20_000, "b connected");
      await a.db.patients.insert({ name: "Ada", ward: "A", notes: "Seen on instance 1." }, { space });
      await waitFor(count(b.db), (k) => k === 1, 20_000, "b to receive Ada through instance 2");
      await b.db.patients.insert({ name: "Bob", ward: "B", notes: "" }, { space });
      await waitFor(count(a.db), (k) => k === 2, 20_000, "a to receive Bob through instance 1");
      expect(await a.db.vector([space.id])).toEqual(await b.db.vector([space.id]));
      const store = await RedisStore.open({ url: cluster.url });
      try {
        expect(Object.fromEntries(await store.vector(space.id))).toEqual(
          (await a.db.vector([space.id]))[space.id],
        );
      } finally {
        await store.close();
      }
    });
  },
);
