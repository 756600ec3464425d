import { mkdtempSync, rmSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import WebSocket from "ws";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encodeBase64Url, fromHex, offeredSubprotocols, toHex, type Message } from "@shoal/client/protocol";
import { makeChain, randomId, testDevice } from "../src/store/commit-fixtures.ts";
import { startRelayProcess, type RelayProcess } from "./relay-process.ts";
import { connect, connectReady, HttpRefusal, type TestClient } from "./ws-client.ts";
import { claimedSpace, signClaim } from "../src/testing/claimed-space.ts";

const newToken = () => new Uint8Array(randomBytes(32));
const started: RelayProcess[] = [];
const clients: TestClient[] = [];
const dirs: string[] = [];

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), "shoal-relay-"));
  dirs.push(d);
  return d;
}

async function start(args: string[]): Promise<RelayProcess> {
  const p = await startRelayProcess(["--quiet", ...args]);
  started.push(p);
  return p;
}

async function ready(
  relay: RelayProcess,
  space: string,
  token: Uint8Array,
  device = randomId(),
): Promise<TestClient> {
  const c = await connectReady(relay.wsUrl, space, token, device);
  clients.push(c);
  return c;
}

async function refusal(relay: RelayProcess, space: string, protocols: string[] | undefined): Promise<number> {
  const ws = new WebSocket(`${relay.wsUrl}/sync/${space}`, protocols);
  return new Promise((resolve, reject) => {
    ws.once("unexpected-response", (_req, res) => {
      resolve(res.statusCode ?? 0);
      res.resume();
      ws.terminate();
    });
    ws.once("open", () => reject(new Error("upgrade was accepted")));
    ws.once("error", () => {});
  });
}

async function metricsText(relay: RelayProcess): Promise<string> {
  return (await fetch(`${relay.url}/metrics`)).text();
}

function metric(text: string, line: string): number {
  const hit = text.split("\n").find((l) => l.startsWith(line + " "));
  return hit ? Number(hit.slice(line.length + 1)) : 0;
}

async function upload(
  c: TestClient,
  space: string,
  commits: Uint8Array[],
): Promise<Extract<Message, { type: "ack" }>> {
  const from = c.frames.length;
  c.send({ type: "commits", space: fromHex(space, 16), commits, more: false });
  return c.next("ack", from);
}

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
    const reply = await nextReply(c, from);
    for (const commit of reply.commits) {
      got.push(commit);
      // Bytes 17..33 are the device id and 33..41 the seq (PROTOCOL.md, "Sealed commit").
      vector.set(
        toHex(commit.subarray(17, 33)),
        Number(new DataView(commit.buffer, commit.byteOffset + 33, 8).getBigUint64(0)),
      );
    }
    if (!reply.more) return got;
  }
}

async function nextReply(c: TestClient, from: number): Promise<Extract<Message, { type: "commits" }>> {
  for (;;) {
    const m = await c.next("commits", from);
    if (m.reply) return m;
    from = c.frames.indexOf(m) + 1;
  }
}

afterAll(async () => {
  for (const c of clients) c.ws.terminate();
  await Promise.all(started.map((p) => p.stop("SIGKILL")));
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe("relay process: access, sync, limits", () => {
  let relay: RelayProcess;
  beforeAll(async () => {
    relay = await start(["--data", tempDir()]);
  });

  it("serves /healthz", async () => {
    const res = await fetch(`${relay.url}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: "ok" });
  });

  it("registers a space with its first token and refuses missing, wrong and other spaces' tokens", async () => {
    const { space, token } = claimedSpace();
    await ready(relay, space, token);
    expect(await refusal(relay, space, ["shoal.1"])).toBe(401);
    expect(await refusal(relay, space, undefined)).toBe(401);
    expect(await refusal(relay, space, ["shoal.1", "shoal-token." + encodeBase64Url(newToken())])).toBe(403);
    const { space: otherSpace, token: otherToken } = claimedSpace();
    await ready(relay, otherSpace, otherToken);
    expect(await refusal(relay, space, ["shoal.1", "shoal-token." + encodeBase64Url(otherToken)])).toBe(403);
    await expect(connect(relay.wsUrl, space, otherToken)).rejects.toBeInstanceOf(HttpRefusal);
  });

  it("acks an upload, then a second client pulls exactly those commits; a third gets live pushes", async () => {
    const { space, token } = claimedSpace();
    const a = await ready(relay, space, token);
    const live = await ready(relay, space, token);
    const d = testDevice();
    const chain = makeChain(space, d, 5);
    const ack = await upload(a, space, chain);
    expect(ack.entries).toEqual([{ device: fromHex(d), seq: 5 }]);
    const pushed = await live.next("commits");
    expect(pushed.reply).toBe(false);
    expect(pushed.commits.map(toHex)).toEqual(chain.map(toHex));
    const b = await ready(relay, space, token);
    expect(b.frames[0]).toMatchObject({ type: "welcome", vector: [{ device: fromHex(d), seq: 5 }] });
    expect((await pullAll(b, space)).map(toHex)).toEqual(chain.map(toHex));
  });

  it("acks a duplicate again and stores it once; refuses a conflicting commit", async () => {
    const { space, token } = claimedSpace();
    const a = await ready(relay, space, token);
    const d = testDevice();
    const chain = makeChain(space, d, 2);
    await upload(a, space, chain);
    const before = await metricsText(relay);
    const again = await upload(a, space, [chain[1]!]);
    expect(again.entries).toEqual([{ device: fromHex(d), seq: 2 }]);
    const after = await metricsText(relay);
    expect(metric(after, "shoal_store_commits")).toBe(metric(before, "shoal_store_commits"));
    expect(metric(after, "shoal_commits_duplicate_total")).toBe(
      metric(before, "shoal_commits_duplicate_total") + 1,
    );
    const from = a.frames.length;
    a.send({ type: "commits", space: fromHex(space, 16), commits: makeChain(space, d, 1), more: false });
    const err = await a.next("error", from);
    expect(err).toMatchObject({ code: "conflict", fatal: false, seq: 1 });
    expect(toHex(err.device!)).toBe(d);
    expect((await pullAll(await ready(relay, space, token), space)).map(toHex)).toEqual(chain.map(toHex));
  });

  const badFrames: [string, () => Uint8Array | string, string][] = [
    ["truncated", () => Uint8Array.of(2, 3, 0x5a, 0x5a), "truncated"],
    ["unknown-version", () => Uint8Array.of(9, 1, 1, 1, ...new Uint8Array(16)), "unknown-version"],
    ["unknown-type", () => Uint8Array.of(2, 200), "unknown-type"],
    [
      "random bytes",
      () => Uint8Array.from({ length: 64 }, (_, i) => (i * 73 + 0x9c) & 255),
      "unknown-version",
    ],
    ["oversized", () => new Uint8Array((1 << 20) + 10).fill(1), "oversized"],
    ["far oversized", () => new Uint8Array(3 << 20), "oversized"],
    ["text", () => "hello", "text-frame"],
  ];
  for (const [name, frame, reason] of badFrames) {
    it(`answers a ${name} frame with an error or a close, counts it, and keeps serving others`, async () => {
      const { space, token } = claimedSpace();
      const healthy = await ready(relay, space, token);
      const bad = await ready(relay, space, token);
      const before = metric(await metricsText(relay), `shoal_frames_rejected_total{reason="${reason}"}`);
      bad.sendRaw(frame());
      const closed = await bad.closed;
      if (name === "far oversized") {
        // Past twice the frame limit, ws cuts the frame off unread: close 1009 (Message Too Big), no frame.
        expect(closed.code).toBe(1009);
      } else {
        expect(closed.code).toBeGreaterThanOrEqual(1002);
        expect(closed.reason.length).toBeGreaterThan(0);
        expect(bad.frames.find((f) => f.type === "error")).toMatchObject({ fatal: true });
      }
      const after = metric(await metricsText(relay), `shoal_frames_rejected_total{reason="${reason}"}`);
      expect(after).toBe(before + 1);
      const ack = await upload(healthy, space, makeChain(space, testDevice(), 1));
      expect(ack.entries.length).toBe(1);
    });
  }

  it("keeps tokens and commit bytes out of /metrics", async () => {
    const text = await metricsText(relay);
    expect(text).toContain("# TYPE shoal_connections_open gauge");
    expect(text).not.toMatch(/shoal-token|[0-9a-f]{32}/);
  });
});

describe("relay process: space claims (PROTOCOL.md 1)", () => {
  let relay: RelayProcess;
  beforeAll(async () => {
    relay = await start(["--data", tempDir()]);
  });
  const claimRefusals = async (fault: string) =>
    metric(await metricsText(relay), `shoal_refusals_total{reason="claim-${fault}"}`);
  const spacesStored = async () => metric(await metricsText(relay), "shoal_spaces_stored");

  it("refuses an unknown space without a claim (403) and registers nothing", async () => {
    const { space, token, claim } = claimedSpace();
    const [before, spaces] = [await claimRefusals("missing"), await spacesStored()];
    const stranger = newToken();
    expect(await refusal(relay, space, offeredSubprotocols(stranger))).toBe(403);
    expect(await claimRefusals("missing")).toBe(before + 1);
    expect(await spacesStored()).toBe(spaces);
    // Not registered with the stranger's token: the creator's claim still registers it with its own.
    const c = await connect(relay.wsUrl, space, token);
    clients.push(c);
    expect(await spacesStored()).toBe(spaces + 1);
    expect(await refusal(relay, space, offeredSubprotocols(stranger, claim))).toBe(403);
  });

  it("refuses a claim made for another space id, and one whose signature does not verify", async () => {
    const { space, token, claim } = claimedSpace();
    const other = claimedSpace(token);
    const spaces = await spacesStored();
    const [wrongSpace, badSignature] = [
      await claimRefusals("wrong-space"),
      await claimRefusals("bad-signature"),
    ];
    expect(await refusal(relay, space, offeredSubprotocols(token, other.claim))).toBe(403);
    const flipped = claim.slice();
    flipped[100]! ^= 0x10;
    expect(await refusal(relay, space, offeredSubprotocols(token, flipped))).toBe(403);
    expect(await claimRefusals("wrong-space")).toBe(wrongSpace + 1);
    expect(await claimRefusals("bad-signature")).toBe(badSignature + 1);
    expect(await spacesStored()).toBe(spaces);
  });

  it("registers a space with a valid claim and serves it", async () => {
    const { space, token } = claimedSpace();
    const a = await ready(relay, space, token);
    const d = testDevice();
    const chain = makeChain(space, d, 2);
    expect((await upload(a, space, chain)).entries).toEqual([{ device: fromHex(d), seq: 2 }]);
    expect((await pullAll(await ready(relay, space, token), space)).map(toHex)).toEqual(chain.map(toHex));
  });

  it("refuses a registration of a known space id with another key and token (403), nothing else affected", async () => {
    const { space, token } = claimedSpace();
    const a = await ready(relay, space, token);
    const live = await ready(relay, space, token);
    await upload(a, space, makeChain(space, testDevice(), 1));
    await live.next("commits");
    // A stranger who learned the id signs "their" claim for it with their own key and token. Its key
    // does not derive the id, but the space is known, so the token decides before any claim is read.
    const stranger = claimedSpace();
    const forged = signClaim(stranger, stranger.claim.subarray(32, 48), space, stranger.token);
    const spaces = await spacesStored();
    expect(await refusal(relay, space, offeredSubprotocols(stranger.token, forged))).toBe(403);
    expect(await refusal(relay, space, offeredSubprotocols(stranger.token, stranger.claim))).toBe(403);
    expect(await spacesStored()).toBe(spaces);
    // The members keep syncing: uploads are acknowledged and pushed live, newcomers with the token join.
    const d = testDevice();
    const from = live.frames.length;
    expect((await upload(a, space, makeChain(space, d, 1))).entries).toContainEqual({
      device: fromHex(d),
      seq: 1,
    });
    expect((await live.next("commits", from)).commits).toHaveLength(1);
    expect(await pullAll(await ready(relay, space, token), space)).toHaveLength(2);
  });

  it("lets any holder of the claim register the space again after a relay wipe", async () => {
    const { space, token, claim } = claimedSpace();
    const first = await start(["--store", "memory"]);
    const a = await ready(first, space, token);
    await upload(a, space, makeChain(space, testDevice(), 1));
    await first.stop("SIGTERM");
    // A new relay with nothing stored: a member (not the creator, who holds no private key here) offers
    // the claim it received in its invitation link, with the token every member derives.
    const wiped = await start(["--store", "memory"]);
    const ws = new WebSocket(`${wiped.wsUrl}/sync/${space}`, offeredSubprotocols(token, claim));
    await new Promise<void>((resolve, reject) => {
      ws.once("open", () => resolve());
      ws.once("unexpected-response", (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    });
    ws.terminate();
    const b = await ready(wiped, space, token);
    const chain = makeChain(space, testDevice(), 1);
    expect((await upload(b, space, chain)).entries).toHaveLength(1);
  });
});

describe("relay process: durability", () => {
  it("keeps commits across a graceful restart (SIGTERM closes sockets with 1001)", async () => {
    const dir = tempDir();
    const { space, token } = claimedSpace();
    const first = await start(["--data", dir]);
    const a = await ready(first, space, token);
    const chain = makeChain(space, testDevice(), 3);
    await upload(a, space, chain);
    const [closed, code] = await Promise.all([a.closed, first.stop("SIGTERM")]);
    expect(closed.code).toBe(1001);
    expect(code).toBe(0);
    const second = await start(["--data", dir]);
    const b = await ready(second, space, token);
    expect((await pullAll(b, space)).map(toHex)).toEqual(chain.map(toHex));
    expect(await refusal(second, space, ["shoal.1", "shoal-token." + encodeBase64Url(newToken())])).toBe(403);
  });

  it("loses nothing it acknowledged when killed with SIGKILL", async () => {
    const dir = tempDir();
    const { space, token } = claimedSpace();
    const relay = await start(["--data", dir]);
    const a = await ready(relay, space, token);
    const device = testDevice();
    const chain = makeChain(space, device, 205, { bodyBytes: 500 });
    let acked = 0;
    for (let i = 0; i < 200; i += 20) {
      const ack = await upload(a, space, chain.slice(i, i + 20));
      acked = ack.entries[0]!.seq;
    }
    // One more batch in flight when the process dies: it may or may not survive, but no ack was seen.
    a.send({ type: "commits", space: fromHex(space, 16), commits: chain.slice(200), more: false });
    await relay.stop("SIGKILL");
    const again = await start(["--data", dir]);
    const b = await ready(again, space, token);
    const got = await pullAll(b, space);
    expect(acked).toBe(200);
    expect(got.slice(0, acked).map(toHex)).toEqual(chain.slice(0, acked).map(toHex));
    // Whatever else survived is a prefix of the in-flight batch, never a torn or foreign commit.
    expect(got.slice(acked).map(toHex)).toEqual(chain.slice(acked, got.length).map(toHex));
  });
});
