import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fromHex, MEMBERSHIP_REFUSALS, toHex, type Message } from "@shoal/client/protocol";
import { makeChain, randomId, sha256, testDevice } from "../src/store/commit-fixtures.ts";
import { disposeAllRedis, RedisProcess } from "./redis-process.ts";
import { startRelayProcess, type RelayProcess } from "./relay-process.ts";
import { connectReady, uploadCommits, type TestClient } from "./ws-client.ts";
import {
  deviceProof,
  TestChain,
  TestLog,
  testMember,
  type TestMember,
} from "../src/testing/member-fixtures.ts";
import { claimedSpace } from "../src/testing/claimed-space.ts";

// Two relay CLI processes on one durable redis-server, devices speaking the raw protocol (ws-client).
const relays: RelayProcess[] = [];
const clients: TestClient[] = [];
let redis: RedisProcess;
let one: RelayProcess;
let two: RelayProcess;

async function startOnRedis(url: string, extra: string[] = []): Promise<RelayProcess> {
  const p = await startRelayProcess(["--quiet", "--store", url, ...extra]);
  relays.push(p);
  return p;
}

async function ready(relay: RelayProcess, space: string, token: Uint8Array, device = randomId()) {
  const c = await connectReady(relay.wsUrl, space, token, device);
  clients.push(c);
  return c;
}

async function upload(c: TestClient, space: string, commits: Uint8Array[]) {
  const from = c.frames.length;
  c.send({ type: "commits", space: fromHex(space, 16), commits, more: false });
  return c.next("ack", from);
}

/** The next live push (a `commits` frame without `reply`) from frame index `from` on. */
async function nextPush(c: TestClient, from: number): Promise<Extract<Message, { type: "commits" }>> {
  for (;;) {
    const m = await c.next("commits", from);
    if (!m.reply) return m;
    from = c.frames.indexOf(m) + 1;
  }
}

/** Pulls everything a fresh device lacks, following `more`. */
async function pullAll(c: TestClient, space: string): Promise<Uint8Array[]> {
  const got: Uint8Array[] = [];
  const vector = new Map<string, number>();
  for (;;) {
    const from = c.frames.length;
    c.send({
      type: "pull",
      space: fromHex(space, 16),
      vector: [...vector].map(([d, seq]) => ({ device: fromHex(d, 16), seq })),
      maxBytes: 1 << 20,
    });
    let reply = await c.next("commits", from);
    while (!reply.reply) reply = await c.next("commits", c.frames.indexOf(reply) + 1);
    for (const commit of reply.commits) {
      got.push(commit);
      // Bytes 17..33 are the device id and 33..41 the seq (PROTOCOL.md, "Sealed commit").
      const seq = new DataView(commit.buffer, commit.byteOffset + 33, 8).getBigUint64(0);
      vector.set(toHex(commit.subarray(17, 33)), Number(seq));
    }
    if (!reply.more) return got;
  }
}

async function healthStatus(relay: RelayProcess): Promise<number> {
  return (await fetch(`${relay.url}/healthz`)).status;
}

/** Polls `/healthz` every 25 ms until it answers `status`; rejects after `timeoutMs` (a bounded wait). */
async function healthBecomes(relay: RelayProcess, status: number, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 0;
  while (Date.now() < deadline) {
    last = await healthStatus(relay);
    if (last === status) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`/healthz stayed ${last}, expected ${status}`);
}

function metric(text: string, name: string): number {
  const line = text.split("\n").find((l) => l.startsWith(name + " "));
  return line ? Number(line.slice(name.length + 1)) : 0;
}

const hex = (commits: Uint8Array[]) => commits.map(toHex).sort();

beforeAll(async () => {
  redis = await RedisProcess.start();
  [one, two] = await Promise.all([startOnRedis(redis.url), startOnRedis(redis.url)]);
});

afterAll(async () => {
  for (const c of clients) c.ws.terminate();
  await Promise.all(relays.map((p) => p.stop("SIGKILL")));
  await disposeAllRedis();
});

describe("two relay instances on one Redis", () => {
  it("close a device removed through one instance on the other, where it is connected", async () => {
    const [admin, bob] = [await testMember(), await testMember()];
    const { space, token } = claimedSpace(undefined, admin.node);
    const log = new TestLog(space);
    const chain = new TestChain(space, admin.device);
    const items = async (who: TestMember) => ({ items: [await deviceProof(who, space)] });
    const adminConn = await connectReady(one.wsUrl, space, token, admin.device, await items(admin));
    clients.push(adminConn);
    const person = { person: "p-bob", name: "sealed", role: "writer", device: bob.keys } as const;
    const ops = [
      await log.sign(admin, { kind: "create", person: "p-admin", name: "sealed", device: admin.keys }),
      await log.sign(admin, { kind: "add-person", ...person }),
    ];
    expect(
      (
        await uploadCommits(
          adminConn,
          space,
          ops.map((op) => chain.membership(op)),
        )
      ).error,
    ).toBeUndefined();
    const bobConn = await connectReady(two.wsUrl, space, token, bob.device, await items(bob));
    clients.push(bobConn);
    const remove = await log.sign(admin, { kind: "remove", person: "p-bob", cut: { [bob.device]: 0 } });
    expect((await uploadCommits(adminConn, space, [chain.membership(remove)])).error).toBeUndefined();
    expect(await bobConn.closed).toEqual({ code: 4403, reason: `HTTP 403: ${MEMBERSHIP_REFUSALS.removed}` });
  });

  it("are both ready, and expose fan-out and Redis metrics", async () => {
    expect(await healthStatus(one)).toBe(200);
    expect(await healthStatus(two)).toBe(200);
    const text = await (await fetch(`${one.url}/metrics`)).text();
    expect(text).toContain("# TYPE shoal_fanout_lag_seconds histogram");
    expect(text).toContain("# TYPE shoal_redis_errors_total counter");
  });

  it("push a commit accepted by one instance live to a device on the other, both ways", async () => {
    const { space, token } = claimedSpace();
    const a = await ready(one, space, token);
    const b = await ready(two, space, token);
    const fromA = makeChain(space, testDevice(), 5);
    const seenByB = b.frames.length;
    const ack = await upload(a, space, fromA);
    expect(ack.entries[0]!.seq).toBe(5);
    expect(hex((await nextPush(b, seenByB)).commits)).toEqual(hex(fromA));

    const fromB = makeChain(space, testDevice(), 3);
    const seenByA = a.frames.length;
    await upload(b, space, fromB);
    expect(hex((await nextPush(a, seenByA)).commits)).toEqual(hex(fromB));

    // Both instances read the same store: a pull through either returns all eight commits.
    expect(hex(await pullAll(a, space))).toEqual(hex([...fromA, ...fromB]));
    expect(hex(await pullAll(b, space))).toEqual(hex([...fromA, ...fromB]));
    const text = await (await fetch(`${two.url}/metrics`)).text();
    expect(metric(text, "shoal_fanout_received_total")).toBeGreaterThanOrEqual(5);
    expect(metric(text, "shoal_fanout_lag_seconds_count")).toBeGreaterThanOrEqual(1);
  });

  it("forward a signal from a device on one instance to a device on the other, addressed or to everyone", async () => {
    const { space, token } = claimedSpace();
    const alice = testDevice();
    const bob = testDevice();
    const a = await ready(one, space, token, alice);
    const b = await ready(two, space, token, bob);
    const payload = new Uint8Array(randomBytes(64));
    for (const to of [fromHex(bob, 16), new Uint8Array(16)]) {
      const seen = b.frames.length;
      a.send({ type: "signal", space: fromHex(space, 16), from: fromHex(alice, 16), to, payload });
      const got = await b.next("signal", seen);
      expect(toHex(got.from)).toBe(alice);
      expect(toHex(got.payload)).toBe(toHex(payload));
    }
    // Back the other way, to a device id that is not connected anywhere: nobody gets it, nothing breaks.
    const seenByA = a.frames.length;
    b.send({
      type: "signal",
      space: fromHex(space, 16),
      from: fromHex(bob, 16),
      to: fromHex(randomId(), 16),
      payload,
    });
    b.send({
      type: "signal",
      space: fromHex(space, 16),
      from: fromHex(bob, 16),
      to: fromHex(alice, 16),
      payload,
    });
    const back = await a.next("signal", seenByA);
    expect(toHex(back.from)).toBe(bob);
    expect(toHex(back.to)).toBe(alice);
  });

  it("store each commit once when one device uploads the same chain through both at once", async () => {
    const { space, token } = claimedSpace();
    const device = testDevice();
    const tab1 = await ready(one, space, token, device);
    const tab2 = await ready(two, space, token, device);
    const chain = makeChain(space, device, 30);
    for (let i = 0; i < chain.length; i += 3) {
      const batch = chain.slice(i, i + 3);
      const [a1, a2] = await Promise.all([upload(tab1, space, batch), upload(tab2, space, batch)]);
      expect(a1.entries[0]!.seq).toBe(i + 3);
      expect(a2.entries[0]!.seq).toBe(i + 3);
    }
    const stored = await pullAll(await ready(one, space, token), space);
    expect(hex(stored)).toEqual(hex(chain));
  });

  it("lose no acknowledged commit when Redis is killed and restarted, and report 503 meanwhile", async () => {
    const { space, token } = claimedSpace();
    const a = await ready(one, space, token);
    const chain = makeChain(space, testDevice(), 20, { bodyBytes: 300 });
    // One frame per commit, each acknowledged before the next: every ack is a durability promise.
    let acked = 0;
    for (const c of chain) acked = (await upload(a, space, [c])).entries[0]!.seq;
    expect(acked).toBe(20);

    await redis.stop("SIGKILL");
    await healthBecomes(one, 503);
    await healthBecomes(two, 503);
    // Pub/sub lost messages while Redis was gone: the instance closes its sockets (1001) so that
    // devices reconnect and pull, instead of silently missing a push.
    const closedA = a.closed;
    await redis.restart();
    await healthBecomes(one, 200);
    await healthBecomes(two, 200);
    expect((await closedA).code).toBe(1001);

    const fresh = await ready(two, space, token);
    expect(hex(await pullAll(fresh, space))).toEqual(hex(chain));
    // And the chain continues from the recovered head.
    const next = makeChain(space, toHex(chain[0]!.subarray(17, 33)), 1, {
      from: 21,
      prevHash: sha256(chain[19]!),
    });
    expect((await upload(fresh, space, next)).entries[0]!.seq).toBe(21);
    const errors = await (await fetch(`${one.url}/metrics`)).text();
    expect(errors).toMatch(/shoal_redis_errors_total\{operation="[a-z]+"\} [1-9]/);
  });

  it("refuse to start on a Redis that does not fsync each write, unless allowed", async () => {
    const loose = await RedisProcess.start(["--appendonly", "no"]);
    await expect(startOnRedis(loose.url)).rejects.toThrow(/appendonly is no/);
    const unsafe = await startOnRedis(loose.url, ["--allow-unsafe-redis"]);
    expect(await healthStatus(unsafe)).toBe(200);
    await unsafe.stop();
  });
});
