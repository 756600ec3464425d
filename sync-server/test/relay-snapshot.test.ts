import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fromHex, toHex, type Message, type VectorEntry } from "@shoal/client/protocol";
import { makeChain, randomId, testDevice } from "../src/store/commit-fixtures.ts";
import { disposeAllRedis, RedisProcess } from "./redis-process.ts";
import { startRelayProcess, type RelayProcess } from "./relay-process.ts";
import { connectReady, type TestClient } from "./ws-client.ts";
import { claimedSpace } from "../src/testing/claimed-space.ts";

// Snapshots through the real relay process (CLI, SQLite store, WebSockets), driven by raw frames.
const started: RelayProcess[] = [];
const clients: TestClient[] = [];
const dirs: string[] = [];
const PART_BYTES = 512 * 1024;

afterAll(async () => {
  for (const c of clients) c.ws.terminate();
  await Promise.all(started.map((p) => p.stop("SIGKILL")));
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function start(dir: string): Promise<RelayProcess> {
  const p = await startRelayProcess(["--quiet", "--data", dir]);
  started.push(p);
  return p;
}

async function ready(relay: RelayProcess, space: string, token: Uint8Array): Promise<TestClient> {
  const c = await connectReady(relay.wsUrl, space, token, randomId());
  clients.push(c);
  return c;
}

const vectorOf = (entries: [string, number][]): VectorEntry[] =>
  entries.map(([d, seq]) => ({ device: fromHex(d, 16), seq }));

/** Uploads `blob` as parts of PART_BYTES and resolves with the relay's answer: snapshot-stored or error. */
async function putSnapshot(
  c: TestClient,
  space: string,
  vector: VectorEntry[],
  blob: Uint8Array,
): Promise<Extract<Message, { type: "snapshot-stored" | "error" }>> {
  const from = c.frames.length;
  const parts = Math.max(1, Math.ceil(blob.length / PART_BYTES));
  for (let part = 0; part < parts; part++) {
    const bytes = blob.subarray(part * PART_BYTES, (part + 1) * PART_BYTES);
    c.send({ type: "snapshot-put", space: fromHex(space, 16), vector, part, parts, bytes });
  }
  return Promise.race([c.next("snapshot-stored", from), c.next("error", from)]);
}

/** Sends `snapshot-get` and collects the answer's parts. `undefined` for the relay's "none" frame. */
async function getSnapshot(
  c: TestClient,
  space: string,
): Promise<{ vector: VectorEntry[]; bytes: Buffer; parts: number } | undefined> {
  let at = c.frames.length;
  c.send({ type: "snapshot-get", space: fromHex(space, 16) });
  const got: Extract<Message, { type: "snapshot" }>[] = [];
  for (;;) {
    const f = await c.next("snapshot", at);
    at = c.frames.indexOf(f) + 1;
    if (f.parts === 0) return undefined;
    expect(f.part).toBe(got.length);
    expect(f.vector).toEqual(got[0]?.vector ?? f.vector);
    got.push(f);
    if (f.part === f.parts - 1) break;
  }
  return { vector: got[0]!.vector, bytes: Buffer.concat(got.map((f) => f.bytes)), parts: got.length };
}

async function upload(c: TestClient, space: string, commits: Uint8Array[]): Promise<void> {
  const from = c.frames.length;
  c.send({ type: "commits", space: fromHex(space, 16), commits, more: false });
  await c.next("ack", from);
}

async function metric(relay: RelayProcess, line: string): Promise<number> {
  const text = await (await fetch(`${relay.url}/metrics`)).text();
  const hit = text.split("\n").find((l) => l.startsWith(line + " "));
  return hit ? Number(hit.slice(line.length + 1)) : 0;
}

describe("relay process: snapshots (SQLite)", () => {
  const dir = mkdtempSync(join(tmpdir(), "shoal-snapshot-"));
  dirs.push(dir);
  const { space, token } = claimedSpace();
  const d = testDevice();
  const e = testDevice();
  const chainD = makeChain(space, d, 5);
  const chainE = makeChain(space, e, 3);
  const blob = new Uint8Array(randomBytes(3 * 1024 * 1024));
  const vector = vectorOf([
    [d, 5],
    [e, 2],
  ]);
  let relay: RelayProcess;
  let a: TestClient;

  beforeAll(async () => {
    relay = await start(dir);
    a = await ready(relay, space, token);
  });

  it("stores a 3 MiB snapshot uploaded in 512 KiB parts and serves it byte-identical to another connection", async () => {
    expect(await getSnapshot(a, space)).toBeUndefined();
    // The commits the snapshot covers come first: the relay never stores a snapshot ahead of them.
    await upload(a, space, [...chainD, ...chainE]);
    const stored = await putSnapshot(a, space, vector, blob);
    expect(stored).toEqual({ type: "snapshot-stored", space: fromHex(space, 16), vector });

    const b = await ready(relay, space, token);
    const got = await getSnapshot(b, space);
    expect(got!.vector).toEqual(vector);
    expect(got!.parts).toBe(4); // the relay splits at what fits a 1 MiB frame
    expect(got!.bytes.equals(Buffer.from(blob))).toBe(true);
    // Then only what came after the snapshot's vector.
    const from = b.frames.length;
    b.send({ type: "pull", space: fromHex(space, 16), vector, maxBytes: 1 << 20 });
    const after = await b.next("commits", from);
    expect(after.commits.map(toHex)).toEqual([toHex(chainE[2]!)]);
    expect(await metric(relay, "shoal_snapshots_stored_total")).toBe(1);
    expect(await metric(relay, "shoal_snapshot_bytes_in_total")).toBe(blob.length);
    expect(await metric(relay, "shoal_snapshot_bytes_out_total")).toBe(blob.length);
  });

  it("refuses a stale snapshot and one with a gap, without closing, and keeps the stored one", async () => {
    const stale = await putSnapshot(
      a,
      space,
      vectorOf([
        [d, 4],
        [e, 3],
      ]),
      new Uint8Array(randomBytes(1000)),
    );
    expect(stale).toMatchObject({ type: "error", code: "stale-snapshot", fatal: false });
    // e's seq 4 is not stored: a snapshot must not claim commits the relay cannot serve after it.
    const gap = await putSnapshot(
      a,
      space,
      vectorOf([
        [d, 5],
        [e, 4],
      ]),
      new Uint8Array(randomBytes(1000)),
    );
    expect(gap).toMatchObject({ type: "error", code: "gap", fatal: false });
    expect(await metric(relay, `shoal_snapshots_refused_total{code="stale-snapshot"}`)).toBe(1);
    expect(await metric(relay, `shoal_snapshots_refused_total{code="gap"}`)).toBe(1);
    expect(await metric(relay, "shoal_snapshots_stored_total")).toBe(1);
    const kept = await getSnapshot(a, space);
    expect(kept!.vector).toEqual(vector);
    expect(kept!.bytes.equals(Buffer.from(blob))).toBe(true);
  });

  it("replaces it with a dominating snapshot that survives a SIGKILL of the relay", async () => {
    const newer = new Uint8Array(randomBytes(1_200_000));
    const newerVector = vectorOf([
      [e, 3],
      [d, 5],
    ]);
    expect(await putSnapshot(a, space, newerVector, newer)).toMatchObject({ type: "snapshot-stored" });
    await relay.stop("SIGKILL");

    const again = await start(dir);
    const c = await ready(again, space, token);
    const survived = await getSnapshot(c, space);
    expect(survived!.vector).toEqual(newerVector);
    expect(survived!.bytes.equals(Buffer.from(newer))).toBe(true);
    // The stored vector still decides after the restart: the older snapshot is stale now.
    expect(await putSnapshot(c, space, vector, blob)).toMatchObject({
      type: "error",
      code: "stale-snapshot",
    });
  });
});

describe("relay process: snapshots (Redis)", () => {
  let redis: RedisProcess;
  beforeAll(async () => {
    redis = await RedisProcess.start();
  });
  afterAll(async () => {
    await disposeAllRedis();
  });

  it("stores a multi-part snapshot in Redis and serves it from another relay instance", async () => {
    const { space, token } = claimedSpace();
    const one = await startRelayProcess(["--quiet", "--store", redis.url]);
    const two = await startRelayProcess(["--quiet", "--store", redis.url]);
    started.push(one, two);
    const a = await ready(one, space, token);
    const d = testDevice();
    await upload(a, space, makeChain(space, d, 2));
    const blob = new Uint8Array(randomBytes(2 * 1024 * 1024 + 7));
    const vector = vectorOf([[d, 2]]);
    expect(await putSnapshot(a, space, vector, blob)).toMatchObject({ type: "snapshot-stored" });
    const b = await ready(two, space, token);
    const got = await getSnapshot(b, space);
    expect(got!.vector).toEqual(vector);
    expect(got!.bytes.equals(Buffer.from(blob))).toBe(true);
    expect(await putSnapshot(b, space, vectorOf([[d, 1]]), blob)).toMatchObject({ code: "stale-snapshot" });
    expect(await putSnapshot(b, space, vectorOf([[d, 3]]), blob)).toMatchObject({ code: "gap" });
  });
});
