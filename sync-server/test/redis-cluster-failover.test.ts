import { Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { Database, SpaceId } from "@shoal/client";
import {
  closeAllDevices,
  openDevice,
  patientCollections,
  relayAcknowledged,
  type Patient,
} from "../../client/test/relay-harness.ts";
import { waitFor } from "../../client/test/wait-for.ts";
import { RedisStore } from "../src/store/redis-store.ts";
import { CLUSTER_UNAVAILABLE, RedisCluster } from "./redis-cluster-process.ts";
import type { RedisProcess } from "./redis-process.ts";
import { startRelayProcess, type RelayProcess } from "./relay-process.ts";

// Two relay processes on a 3-master Redis Cluster with one replica per master; real @shoal/client
// databases (fake-indexeddb). The master that holds the space is killed after it acknowledged commits
// its replica never received, and the replica is promoted: the devices must re-upload them.
type Db = Database<{ patients: Patient }>;
const count = (db: Db) => db.patients.live((c) => c.count());
let cluster: RedisCluster;
let store: RedisStore | undefined;
const relays: RelayProcess[] = [];

/** One command on one node; the node must be alive. */
async function onNode(node: RedisProcess, ...command: [string, ...string[]]): Promise<unknown> {
  const client = new Redis(node.port, "127.0.0.1", { maxRetriesPerRequest: 0 });
  try {
    return await client.call(...command);
  } finally {
    client.disconnect();
  }
}

/** Polls the store (bounded) until `device`'s head in `space` is `seq`. */
async function headBecomes(store: RedisStore, space: string, device: string, seq: number): Promise<void> {
  const deadline = Date.now() + 30_000;
  let head: number | undefined;
  while (Date.now() < deadline) {
    head = (await store.vector(space)).get(device);
    if (head === seq) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`the store's head of ${device} stayed ${head}, expected ${seq}`);
}

/** Polls `/healthz` (bounded) until it answers `status`. */
async function healthBecomes(url: string, status: number): Promise<void> {
  const deadline = Date.now() + 15_000;
  let last = 0;
  while (Date.now() < deadline) {
    last = (await fetch(`${url}/healthz`)).status;
    if (last === status) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${url}/healthz stayed ${last}, expected ${status}`);
}

/** Two relay processes on the cluster, and two devices (not joined to anything yet). */
async function relaysAndDevices() {
  const [one, two] = await Promise.all(
    [0, 1].map(() => startRelayProcess(["--quiet", "--store", cluster.url])),
  );
  relays.push(one!, two!);
  const a = await openDevice<{ patients: Patient }>("a", patientCollections);
  const b = await openDevice<{ patients: Patient }>("b", patientCollections);
  return { one: one!, two: two!, a, b };
}

/**
 * A writes five patients that reach the space's master and its replica (WAIT confirms the replica
 * applied them), then the replica is cut off (stopped, its replication link closed by the master) and
 * A writes five more: acknowledged by the relay, on the master's disk, never on the replica. B receives
 * all ten live.
 */
async function fiveReplicatedThenFiveNot(
  a: { db: Db },
  b: { db: Db },
  space: SpaceId,
  master: RedisProcess,
  replica: RedisProcess,
): Promise<void> {
  const write = async (from: number) => {
    for (let i = from; i < from + 5; i++)
      await a.db.patients.insert({ name: `P${i}`, ward: "A", notes: "" }, { space });
    await relayAcknowledged(a.db, space);
  };
  await write(0);
  await waitFor(count(b.db), (k) => k === 5, 20_000, "b to receive the first five");
  expect(await onNode(master, "WAIT", "1", "5000")).toBe(1);
  process.kill(replica.pid!, "SIGSTOP");
  expect(await onNode(master, "CLIENT", "KILL", "TYPE", "replica")).toBeGreaterThanOrEqual(1);
  await write(5);
  await waitFor(count(b.db), (k) => k === 10, 20_000, "b to receive the next five, live");
}

describe.skipIf(CLUSTER_UNAVAILABLE)(
  CLUSTER_UNAVAILABLE
    ? `Redis Cluster failover (skipped: ${CLUSTER_UNAVAILABLE})`
    : "Redis Cluster failover, 3 masters + 3 replicas",
  () => {
    beforeAll(async () => {
      cluster = await RedisCluster.start({ masters: 3, replicas: 1 });
    });
    afterEach(async () => {
      await closeAllDevices();
      await Promise.all(relays.splice(0).map((p) => p.stop("SIGKILL")));
      await store?.close();
      store = undefined;
    });
    afterAll(async () => {
      // A stopped replica would survive SIGKILL's wait until continued; dispose continues nothing,
      // so make sure none is left stopped.
      for (const node of cluster?.nodes ?? []) if (node.pid) process.kill(node.pid, "SIGCONT");
      await cluster?.dispose();
    });

    it("loses nothing when a master dies: devices re-upload what the promoted replica lacks", async () => {
      const { one, two, a, b } = await relaysAndDevices();
      const space = await a.db.createSpace({ name: "Failover Ward" });
      await b.db.join(await a.db.invite(space, "https://app.example/"));
      a.online(one!.url);
      b.online(two!.url);
      const { master, replica } = await cluster.shardOf(`shoal:{${space.id}}:meta`);
      expect(replica).toBeDefined();

      // 1. Five commits that reach the master and its replica; 2. the replica is cut off, then five
      // more are acknowledged: on the master's disk, never on the replica.
      await fiveReplicatedThenFiveNot(a, b, space.id, master, replica!);
      const acknowledged = (await a.db.vector([space.id]))[space.id]![a.db.deviceId];
      expect(acknowledged).toBe(10);

      // 3. Devices offline (so nothing re-uploads before the gap is seen), the master dies, the replica
      // resumes and is promoted by the other masters.
      a.offline();
      b.offline();
      await master.stop("SIGKILL");
      process.kill(replica!.pid!, "SIGCONT");
      await cluster.promoted(replica!);
      // The promoted replica lacks the five acknowledged commits.
      store = await RedisStore.open({ url: cluster.url });
      expect((await store.vector(space.id)).get(a.db.deviceId)).toBe(5);

      // 4. The devices come back to the same relays, which survived the failover: A's connection
      // starts from the relay's vector (5) and re-uploads 6..10; both converge, and live fan-out runs
      // through the promoted master's sharded channel.
      a.online(one!.url);
      b.online(two!.url);
      await headBecomes(store, space.id, a.db.deviceId, 10);
      await waitFor(b.db.status, (s) => s.state === "synced", 30_000, "b synced after the failover");
      await b.db.patients.insert({ name: "From B", ward: "B", notes: "" }, { space });
      await waitFor(count(a.db), (k) => k === 11, 30_000, "a to receive b's commit through instance 1");
      await a.db.patients.insert({ name: "From A", ward: "A", notes: "" }, { space });
      await waitFor(count(b.db), (k) => k === 12, 30_000, "b to receive a's commit through instance 2");
      await relayAcknowledged(a.db, space.id);
      await relayAcknowledged(b.db, space.id);

      // Nothing lost, nothing twice: the store holds exactly seqs 1..n of each device, as they do.
      const vectorA = (await a.db.vector([space.id]))[space.id]!;
      expect(vectorA).toEqual((await b.db.vector([space.id]))[space.id]);
      expect(Object.fromEntries(await store.vector(space.id))).toEqual(vectorA);
      const total = Object.values(vectorA).reduce((k, seq) => k + seq, 0);
      expect((await store.usage(space.id)).commits).toBe(total);
      const all = await store.read(space.id, new Map(), { maxBytes: 1 << 30, maxCount: 10_000 });
      expect(all.commits.length).toBe(total);
    });

    it("keeps devices syncing through a failover while they stay online", async () => {
      const { one, two, a, b } = await relaysAndDevices();
      // A space on a master that still has a replica (the first test left one master without).
      let space = await a.db.createSpace({ name: "Live Failover" });
      let shard = await cluster.shardOf(`shoal:{${space.id}}:meta`);
      for (let i = 0; !shard.replica && i < 20; i++) {
        space = await a.db.createSpace({ name: `Live Failover ${i}` });
        shard = await cluster.shardOf(`shoal:{${space.id}}:meta`);
      }
      const { master, replica } = shard;
      expect(replica).toBeDefined();
      await b.db.join(await a.db.invite(space, "https://app.example/"));
      a.online(one!.url);
      b.online(two!.url);
      // As above, five acknowledged commits the replica never gets; but now the devices stay online
      // through the kill and the promotion, and A writes on meanwhile. The relays' sharded subscribers
      // lose the dead master, so they close their sockets (1001) once they subscribe again, and the
      // devices reconnect, upload from the store's vector and pull.
      await fiveReplicatedThenFiveNot(a, b, space.id, master, replica!);
      await master.stop("SIGKILL");
      process.kill(replica!.pid!, "SIGCONT");
      for (let i = 10; i < 15; i++)
        await a.db.patients.insert({ name: `P${i}`, ward: "A", notes: "" }, { space });
      await cluster.promoted(replica!);
      await b.db.patients.insert({ name: "From B", ward: "B", notes: "" }, { space });
      await waitFor(count(b.db), (k) => k === 16, 30_000, "b to receive what a wrote during the failover");
      await waitFor(count(a.db), (k) => k === 16, 30_000, "a to receive b's commit after the failover");

      store = await RedisStore.open({ url: cluster.url });
      await headBecomes(store, space.id, a.db.deviceId, 15);
      await relayAcknowledged(b.db, space.id);
      const vectorA = (await a.db.vector([space.id]))[space.id]!;
      expect(vectorA).toEqual((await b.db.vector([space.id]))[space.id]);
      expect(Object.fromEntries(await store.vector(space.id))).toEqual(vectorA);
      const total = Object.values(vectorA).reduce((k, seq) => k + seq, 0);
      expect(total).toBe(16);
      expect((await store.usage(space.id)).commits).toBe(total);
      const all = await store.read(space.id, new Map(), { maxBytes: 1 << 30, maxCount: 10_000 });
      expect(all.commits.length).toBe(total);
      // Both relays report themselves healthy again: store reachable, sharded subscribers back.
      for (const relay of [one!, two!]) await healthBecomes(relay.url, 200);
    });
  },
);
