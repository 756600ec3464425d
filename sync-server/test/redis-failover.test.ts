import { WebSocket } from "ws";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { Database } from "@shoal/client";
import { webSocketTransport } from "../../client/src/transports/websocket-transport.ts";
import {
  closeAllDevices,
  openDevice,
  patientCollections,
  relayAcknowledged,
  type Patient,
} from "../../client/test/relay-harness.ts";
import { waitFor } from "../../client/test/wait-for.ts";
import { RedisStore } from "../src/store/redis-store.ts";
import { disposeAllRedis, RedisProcess } from "./redis-process.ts";
import { startRelayProcess, type RelayProcess } from "./relay-process.ts";

// Real @shoal/client databases (fake-indexeddb) syncing through two relay CLI processes on one Redis.
type Db = Database<{ patients: Patient }>;
const device = (label: string) => openDevice<{ patients: Patient }>(label, patientCollections);
const count = (db: Db) => db.patients.live((c) => c.count());
const relays: RelayProcess[] = [];
let redis: RedisProcess;

async function startOnRedis(): Promise<RelayProcess> {
  const p = await startRelayProcess(["--quiet", "--store", redis.url]);
  relays.push(p);
  return p;
}

beforeAll(async () => {
  redis = await RedisProcess.start();
});
afterEach(async () => {
  await closeAllDevices();
  await Promise.all(relays.splice(0).map((p) => p.stop("SIGKILL")));
});
afterAll(async () => {
  await disposeAllRedis();
});

describe("devices on different relay instances", () => {
  it("converge through the shared Redis, live", async () => {
    const [one, two] = await Promise.all([startOnRedis(), startOnRedis()]);
    const a = await device("a");
    const b = await device("b");
    const space = await a.db.createSpace({ name: "North Clinic" });
    await b.db.join(await a.db.invite(space, "https://app.example/"));
    a.online(one.url);
    b.online(two.url);
    await waitFor(b.db.status, (s) => s.state === "synced", 20_000, "b connected");
    await a.db.patients.insert({ name: "Ada", ward: "A", notes: "Seen on instance 1." }, { space });
    await waitFor(count(b.db), (n) => n === 1, 20_000, "b to receive Ada through instance 2");
    await b.db.patients.insert({ name: "Bob", ward: "B", notes: "" }, { space });
    await waitFor(count(a.db), (n) => n === 2, 20_000, "a to receive Bob through instance 1");
    expect(await a.db.vector([space.id])).toEqual(await b.db.vector([space.id]));
  });

  it("fail over to the other instance when theirs is killed, losing and duplicating nothing", async () => {
    const [one, two] = await Promise.all([startOnRedis(), startOnRedis()]);
    const a = await device("a");
    const b = await device("b");
    const space = await a.db.createSpace({ name: "Field team" });
    await b.db.join(await a.db.invite(space, "https://app.example/"));
    const transport = webSocketTransport({ url: [one.url, two.url], WebSocket });
    a.online(one.url, transport);
    b.online(two.url);
    expect(transport.label).toBe(one.wsUrl);
    for (let i = 0; i < 10; i++)
      await a.db.patients.insert({ name: `P${i}`, ward: "A", notes: "" }, { space });
    await relayAcknowledged(a.db, space.id);
    await waitFor(count(b.db), (n) => n === 10, 20_000, "b to receive the first ten");

    expect(await one.stop("SIGKILL")).toBe("SIGKILL");
    // Written while A's instance is dead: they wait on A's device, then go through instance 2.
    for (let i = 10; i < 20; i++)
      await a.db.patients.insert({ name: `P${i}`, ward: "A", notes: "" }, { space });
    await waitFor(count(b.db), (n) => n === 20, 30_000, "b to receive what a wrote after the failover");
    expect(transport.label).toBe(two.wsUrl);
    await b.db.patients.insert({ name: "From B", ward: "B", notes: "" }, { space });
    await waitFor(count(a.db), (n) => n === 21, 20_000, "a to receive b's commit on instance 2");
    await relayAcknowledged(a.db, space.id);

    // Nothing lost, nothing twice: the store holds exactly seqs 1..n of each device, as the devices do.
    const vectorA = (await a.db.vector([space.id]))[space.id]!;
    expect(vectorA).toEqual((await b.db.vector([space.id]))[space.id]);
    const store = await RedisStore.open({ url: redis.url });
    try {
      expect(Object.fromEntries(await store.vector(space.id))).toEqual(vectorA);
      const total = Object.values(vectorA).reduce((n, seq) => n + seq, 0);
      expect((await store.usage(space.id)).commits).toBe(total);
      const all = await store.read(space.id, new Map(), { maxBytes: 1 << 30, maxCount: 10_000 });
      expect(all.commits.length).toBe(total);
    } finally {
      await store.close();
    }
  });
});
