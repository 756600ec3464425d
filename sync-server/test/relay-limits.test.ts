import { spawn } from "node:child_process";
import { once } from "node:events";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { connect as tcpConnect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import WebSocket from "ws";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { encodeBase64Url, fromHex, offeredSubprotocols } from "@shoal/client/protocol";
import { makeChain, randomId, testDevice } from "../src/store/commit-fixtures.ts";
import { relayCliArgs } from "./relay-bundle.ts";
import { startRelayProcess, type RelayProcess } from "./relay-process.ts";
import { connectReady, type TestClient } from "./ws-client.ts";
import { claimedSpace } from "../src/testing/claimed-space.ts";

// Item 8 of issue 12: what a stranger can make the relay hold. Every test runs the real relay process
// with small limits and a bounded load on loopback (127.0.0.x addresses stand for distinct clients).

const REPO = fileURLToPath(new URL("../../", import.meta.url));
const newToken = () => new Uint8Array(randomBytes(32));
const relays: RelayProcess[] = [];
const clients: TestClient[] = [];
const sockets: Socket[] = [];
const dirs: string[] = [];

async function start(args: string[]): Promise<RelayProcess> {
  const relay = await startRelayProcess(["--quiet", "--store", "memory", ...args]);
  relays.push(relay);
  return relay;
}

async function ready(
  relay: RelayProcess,
  space: string,
  token: Uint8Array,
  from?: string,
): Promise<TestClient> {
  const c = await connectReady(
    relay.wsUrl,
    space,
    token,
    randomId(),
    from ? { localAddress: from } : undefined,
  );
  clients.push(c);
  return c;
}

/** The HTTP status of a refused upgrade (0 when it was accepted: the socket is closed again). */
async function upgradeStatus(
  relay: RelayProcess,
  space: string,
  protocols: string[],
  options: WebSocket.ClientOptions = {},
): Promise<number> {
  const ws = new WebSocket(`${relay.wsUrl}/sync/${space}`, protocols, options);
  return new Promise((resolve, reject) => {
    ws.once("unexpected-response", (_req, res) => {
      resolve(res.statusCode ?? 0);
      res.resume();
      ws.terminate();
    });
    ws.once("open", () => {
      ws.terminate();
      resolve(0);
    });
    ws.once("error", reject);
  });
}

/** A raw TCP connection from `localAddress`, open (nothing sent yet). */
async function rawSocket(relay: RelayProcess, localAddress = "127.0.0.1"): Promise<Socket> {
  const { port } = new URL(relay.url);
  const socket = tcpConnect({ host: "127.0.0.1", port: Number(port), localAddress });
  sockets.push(socket);
  socket.on("error", () => {});
  await once(socket, "connect");
  return socket;
}

/** Everything the server sends on `socket` until it closes it. */
async function readUntilClosed(socket: Socket): Promise<string> {
  let text = "";
  socket.on("data", (d: Buffer) => (text += d.toString("latin1")));
  if (!socket.closed) await once(socket, "close");
  return text;
}

async function metricsText(relay: RelayProcess): Promise<string> {
  return (await fetch(`${relay.url}/metrics`)).text();
}

function metric(text: string, line: string): number {
  const hit = text.split("\n").find((l) => l.startsWith(line + " "));
  return hit ? Number(hit.slice(line.length + 1)) : 0;
}

const refusals = async (relay: RelayProcess, reason: string) =>
  metric(await metricsText(relay), `shoal_refusals_total{reason="${reason}"}`);

/** Sends `count` snapshot parts of `partBytes` each (of a snapshot that never completes). */
function sendParts(
  c: TestClient,
  space: string,
  count: number,
  partBytes: number,
  first = 0,
  parts = 65_535,
): void {
  for (let part = first; part < first + count; part++) {
    c.send({
      type: "snapshot-put",
      space: fromHex(space, 16),
      vector: [],
      part,
      parts,
      bytes: new Uint8Array(partBytes),
    });
  }
}

/** Sends a ping and resolves with the pong: every frame sent before it has been read by the relay. */
async function roundTrip(c: TestClient): Promise<void> {
  const from = c.frames.length;
  const nonce = Math.floor(Math.random() * 2 ** 32);
  c.send({ type: "ping", nonce });
  await c.next("pong", from);
}

/**
 * One relay with the default limits, started on first use and kept for the file: the tests that use it
 * leave nothing behind that another could see (their sockets are closed after each, and each counts
 * from its own loopback address or reads only what its own requests did), so a start each is waste.
 */
let defaults: Promise<RelayProcess> | undefined;
const withDefaults = (): Promise<RelayProcess> =>
  (defaults ??= startRelayProcess(["--quiet", "--store", "memory"]));

afterEach(async () => {
  for (const c of clients.splice(0)) c.ws.terminate();
  for (const s of sockets.splice(0)) s.destroy();
  await Promise.all(relays.splice(0).map((r) => r.stop()));
});
afterAll(async () => {
  await (await defaults)?.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe("relay limits against strangers (real relay process, loopback)", () => {
  it("refuses 0 as a limit with a clear message, from a flag or the environment", async () => {
    const run = async (args: string[], env: Record<string, string> = {}) => {
      const child = spawn(
        process.execPath,
        [...relayCliArgs(), "--port", "0", "--store", "memory", ...args],
        {
          cwd: REPO,
          env: { ...process.env, ...env },
          stdio: ["ignore", "pipe", "pipe"],
        },
      );
      let err = "";
      child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
      child.stdout!.resume();
      const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
      const [code] = (await once(child, "exit")) as [number | null];
      clearTimeout(timer);
      return { code, err };
    };
    const flag = await run(["--max-frame-bytes", "0"]);
    expect(flag.code).toBe(2);
    expect(flag.err).toContain("--max-frame-bytes (or SHOAL_MAX_FRAME_BYTES) needs a positive integer");
    const fromEnv = await run([], { SHOAL_MAX_CONNECTIONS: "0" });
    expect(fromEnv.code).toBe(2);
    expect(fromEnv.err).toContain("--max-connections (or SHOAL_MAX_CONNECTIONS) needs a positive integer");
  });

  it("reads a limit from its environment variable", async () => {
    const child = await startRelayProcessWithEnv({ SHOAL_MAX_CONNECTIONS_PER_ADDRESS: "2" });
    for (let i = 0; i < 2; i++) await rawSocket(child, "127.0.0.3");
    const turned = await readUntilClosed(await rawSocket(child, "127.0.0.3"));
    expect(turned).toMatch(/^HTTP\/1\.1 429 /);
  });

  it("has limits by default: the 257th socket from one address and its 61st new space in an hour are refused", async () => {
    const relay = await withDefaults();
    for (let i = 0; i < 256; i++) await rawSocket(relay, "127.0.0.6");
    expect(await readUntilClosed(await rawSocket(relay, "127.0.0.6"))).toMatch(/^HTTP\/1\.1 429 /);
    for (const s of sockets.splice(0)) s.destroy();
    const token = newToken();
    const statuses: number[] = [];
    for (let i = 0; i < 61; i++) {
      const { space, claim } = claimedSpace(token);
      statuses.push(
        await upgradeStatus(relay, space, offeredSubprotocols(token, claim), { localAddress: "127.0.0.7" }),
      );
    }
    expect(statuses.filter((s) => s === 0).length).toBe(60);
    expect(statuses.at(-1)).toBe(429);
    // The budget is checked before the claim: a made-up space without one is turned away as cheaply.
    const bare = offeredSubprotocols(token);
    expect(await upgradeStatus(relay, randomId(), bare, { localAddress: "127.0.0.7" })).toBe(429);
  });

  it("caps TCP connections per address (429) and in total (503), idle ones included, and serves others", async () => {
    const relay = await start(["--max-connections-per-address", "5", "--max-connections", "8"]);
    // Five silent sockets from one address (no request at all: they would hold a slot for ever).
    for (let i = 0; i < 5; i++) await rawSocket(relay, "127.0.0.2");
    expect(await readUntilClosed(await rawSocket(relay, "127.0.0.2"))).toMatch(/^HTTP\/1\.1 429 /);
    // Another address is still served.
    const { space, token } = claimedSpace();
    const c = await ready(relay, space, token, "127.0.0.3");
    c.close();
    await c.closed;
    // Fill the total (8) from a third address; the ninth is turned away whoever it is.
    for (let i = 0; i < 3; i++) await rawSocket(relay, "127.0.0.4");
    expect(await readUntilClosed(await rawSocket(relay, "127.0.0.5"))).toMatch(/^HTTP\/1\.1 503 /);
    // The refusals are counted; the metrics request needs a slot, so free one first.
    sockets.pop();
    sockets[0]!.destroy();
    await once(sockets[0]!, "close");
    const text = await metricsText(relay);
    expect(metric(text, 'shoal_refusals_total{reason="connections-per-address"}')).toBe(1);
    expect(metric(text, 'shoal_refusals_total{reason="connections"}')).toBe(1);
  });

  it("closes a connection that does not finish its headers in time (408), and counts it", async () => {
    const relay = await start(["--headers-timeout-ms", "300", "--request-timeout-ms", "600"]);
    const socket = await rawSocket(relay);
    socket.write("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ");
    // Bounded by the test's own deadline: with Node's defaults this took 60 to 90 s.
    const answer = await Promise.race([
      readUntilClosed(socket),
      new Promise<string>((resolve) => setTimeout(() => resolve("still open after 10 s"), 10_000).unref()),
    ]);
    expect(answer).toMatch(/^HTTP\/1\.1 408 /);
    expect(await refusals(relay, "request-timeout")).toBe(1);
    // A WebSocket outlives the request timeout: it is no request any more once upgraded.
    const { space, token } = claimedSpace();
    const c = await ready(relay, space, token);
    // The relay's own clock says when the request timeout has passed: a request begun after the upgrade
    // whose body never comes is closed by it.
    const probe = await rawSocket(relay);
    probe.write("POST /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 10\r\n\r\n");
    await readUntilClosed(probe);
    await roundTrip(c);
  });

  it("throttles a connection's bytes: a burst far above the rate is read at the rate, not at once", async () => {
    const rate = 256 * 1024;
    const relay = await start([
      ...["--max-frame-bytes", "65536", "--max-snapshot-bytes", "65536"],
      ...["--connection-bytes-per-second", String(rate)],
    ]);
    const { space, token } = claimedSpace();
    const c = await ready(relay, space, token);
    const partBytes = 60 * 1024;
    // 840 KiB, beyond the 512 KiB burst (twice the rate): the bound below is 0.7 s, against a few ms
    // unthrottled. (It sent 1.5 MiB once, which proved the same in 4 s of waiting.)
    const parts = 14;
    const started = performance.now();
    sendParts(c, space, parts, partBytes);
    await roundTrip(c);
    const elapsedMs = performance.now() - started;
    // A lower bound only (a slow machine makes it longer, never shorter): the relay cannot have read
    // the bytes beyond its burst faster than its rate. The ping may be read with the last frames in one
    // socket read (before their debt is repaid), hence two frames of slack. Unthrottled: a few ms.
    const beyondBurst = parts * partBytes - 2 * rate - 2 * partBytes;
    expect(elapsedMs).toBeGreaterThanOrEqual((beyondBurst / rate) * 1000 * 0.9);
    expect(await refusals(relay, "connection-bytes-rate")).toBeGreaterThan(0);
  });

  it("throttles a connection's commits (each a signature to verify): served all, read at the rate", async () => {
    const rate = 200;
    const relay = await start(["--connection-commits-per-second", String(rate)]);
    const { space, token } = claimedSpace();
    const c = await ready(relay, space, token);
    const device = testDevice();
    const chain = makeChain(space, device, 1000, { bodyBytes: 40 });
    const frames = 4; // 1,000 commits, beyond the burst of 400 (twice the rate)
    const started = performance.now();
    const from = c.frames.length;
    for (let i = 0; i < frames; i++)
      c.send({
        type: "commits",
        space: fromHex(space, 16),
        commits: chain.slice(i * 250, (i + 1) * 250),
        more: false,
      });
    // Every commit is stored and acknowledged: the uploader is slowed, never refused.
    for (;;) {
      const ack = await c.next("ack", from);
      if (ack.entries.some((e) => e.seq === 1000)) break;
      c.frames.splice(c.frames.indexOf(ack), 1);
    }
    const elapsedMs = performance.now() - started;
    // A lower bound only (a slow machine makes it longer): the commits beyond the burst, less one
    // frame read before its debt is known, cannot have been read faster than the rate.
    const beyondBurst = 1000 - 2 * rate - 250;
    expect(elapsedMs).toBeGreaterThanOrEqual((beyondBurst / rate) * 1000 * 0.9);
    expect(await refusals(relay, "connection-commits-rate")).toBeGreaterThan(0);
    expect(metric(await metricsText(relay), 'shoal_commits_refused_total{code="signature"}')).toBe(0);
  });

  it("throttles a space's bytes across its connections", async () => {
    const rate = 256 * 1024;
    const relay = await start([
      ...["--max-frame-bytes", "65536", "--max-snapshot-bytes", "65536"],
      ...["--space-bytes-per-second", String(rate)],
    ]);
    const { space, token } = claimedSpace();
    const a = await ready(relay, space, token);
    const b = await ready(relay, space, token);
    const partBytes = 60 * 1024;
    // 960 KiB in all, 480 KiB from each connection: neither is over the space's 512 KiB burst alone.
    const each = 8;
    const started = performance.now();
    sendParts(a, space, each, partBytes);
    sendParts(b, space, each, partBytes);
    await Promise.all([roundTrip(a), roundTrip(b)]);
    const elapsedMs = performance.now() - started;
    // As above, with two frames of slack per connection.
    const beyondBurst = 2 * each * partBytes - 2 * rate - 4 * partBytes;
    expect(elapsedMs).toBeGreaterThanOrEqual((beyondBurst / rate) * 1000 * 0.9);
    expect(await refusals(relay, "space-bytes-rate")).toBeGreaterThan(0);
  });

  it("bounds the bytes of unfinished snapshot uploads across connections, and frees them on close", async () => {
    const relay = await start(["--max-upload-buffer-bytes", String(256 * 1024)]);
    const { space, token } = claimedSpace();
    const a = await ready(relay, space, token);
    const b = await ready(relay, space, token);
    // A holds 192 KiB of a snapshot it never finishes.
    sendParts(a, space, 3, 64 * 1024);
    await roundTrip(a);
    expect(a.frames.some((f) => f.type === "error")).toBe(false);
    // B's second part would take the relay past 256 KiB: refused, not fatal.
    const from = b.frames.length;
    sendParts(b, space, 2, 64 * 1024);
    const error = await b.next("error", from);
    expect(error.code).toBe("too-large");
    expect(error.fatal).toBe(false);
    expect(error.message).toContain("unfinished snapshot uploads");
    expect(await refusals(relay, "upload-buffer")).toBe(1);
    // Once A is gone its bytes are free: B's new upload fits again and is stored.
    a.ws.terminate();
    await a.closed;
    await roundTrip(b);
    const commits = makeChain(space, testDevice(), 1);
    b.send({ type: "commits", space: fromHex(space, 16), commits, more: false });
    const ack = await b.next("ack", from);
    const vector = ack.entries;
    const at = b.frames.length;
    for (let part = 0; part < 3; part++) {
      b.send({
        type: "snapshot-put",
        space: fromHex(space, 16),
        vector,
        part,
        parts: 3,
        bytes: new Uint8Array(64 * 1024),
      });
    }
    await b.next("snapshot-stored", at);
  });

  it("drops a stalled upload after the idle timeout though pongs keep its connection open", async () => {
    const relay = await start(["--max-upload-buffer-bytes", String(256 * 1024), "--idle-timeout-ms", "1500"]);
    const { space, token } = claimedSpace();
    const a = await ready(relay, space, token);
    const from = a.frames.length;
    sendParts(a, space, 3, 64 * 1024);
    // Silent from here on: only the ws library's automatic pongs answer the relay's pings.
    const error = await a.next("error", from);
    expect(error.message).toContain("stalled");
    expect(error.fatal).toBe(false);
    expect(a.ws.readyState).toBe(WebSocket.OPEN);
    expect(await refusals(relay, "upload-stalled")).toBe(1);
    // Its bytes are free again: another connection may buffer the whole budget.
    const b = await ready(relay, space, token);
    const at = b.frames.length;
    sendParts(b, space, 4, 64 * 1024);
    await roundTrip(b);
    expect(b.frames.slice(at).some((f) => f.type === "error")).toBe(false);
  });

  it("caps the number of spaces (503) and the new spaces per address per hour (429)", async () => {
    const relay = await start(["--max-spaces", "4", "--new-spaces-per-hour", "2"]);
    const token = newToken();
    // A new space's offer carries its claim; a known space's token alone is enough.
    const offer = offeredSubprotocols(token);
    const claimed = () => {
      const { space, claim } = claimedSpace(token);
      return { space, offer: offeredSubprotocols(token, claim) };
    };
    const known = [claimed(), claimed()];
    for (const k of known)
      expect(await upgradeStatus(relay, k.space, k.offer, { localAddress: "127.0.0.2" })).toBe(0);
    // A third new space from the same address: over its hourly budget.
    const third = claimed();
    expect(await upgradeStatus(relay, third.space, third.offer, { localAddress: "127.0.0.2" })).toBe(429);
    // Its known spaces still connect; another address may register.
    expect(await upgradeStatus(relay, known[0]!.space, offer, { localAddress: "127.0.0.2" })).toBe(0);
    for (let i = 0; i < 2; i++) {
      const next = claimed();
      expect(await upgradeStatus(relay, next.space, next.offer, { localAddress: "127.0.0.3" })).toBe(0);
    }
    // Four spaces held: the store is full of spaces for everyone, checked before any claim.
    const fifth = claimed();
    expect(await upgradeStatus(relay, fifth.space, fifth.offer, { localAddress: "127.0.0.4" })).toBe(503);
    expect(await upgradeStatus(relay, randomId(), offer, { localAddress: "127.0.0.4" })).toBe(503);
    expect(await upgradeStatus(relay, known[1]!.space, offer, { localAddress: "127.0.0.4" })).toBe(0);
    const text = await metricsText(relay);
    expect(metric(text, 'shoal_refusals_total{reason="new-spaces-rate"}')).toBe(1);
    expect(metric(text, 'shoal_refusals_total{reason="spaces"}')).toBe(2);
    expect(metric(text, "shoal_spaces_stored")).toBe(4);
  });

  it("refuses uploads once the whole store holds its byte cap, with a typed refusal, in every space", async () => {
    const relay = await start(["--max-store-bytes", "20000"]);
    const { space: spaceA, token: tokenA } = claimedSpace();
    const { space: spaceB, token: tokenB } = claimedSpace();
    const a = await ready(relay, spaceA, tokenA);
    const b = await ready(relay, spaceB, tokenB);
    const deviceA = testDevice();
    const chain = makeChain(spaceA, deviceA, 30, { bodyBytes: 1000 });
    let from = a.frames.length;
    a.send({ type: "commits", space: fromHex(spaceA, 16), commits: chain, more: false });
    const ack = await a.next("ack", from);
    const stored = ack.entries[0]!.seq;
    expect(stored).toBeGreaterThan(0);
    expect(stored).toBeLessThan(30);
    const refusal = await a.next("error", from);
    expect(refusal.code).toBe("quota");
    expect(refusal.message).toContain("relay's storage is full");
    expect(refusal.fatal).toBe(false);
    // Another space is refused as well: the cap is the relay's, not the space's.
    from = b.frames.length;
    b.send({
      type: "commits",
      space: fromHex(spaceB, 16),
      commits: makeChain(spaceB, testDevice(), 1, { bodyBytes: 1000 }),
      more: false,
    });
    expect((await b.next("error", from)).message).toContain("relay's storage is full");
    const text = await metricsText(relay);
    expect(metric(text, 'shoal_commits_refused_total{code="store-full"}')).toBe(2);
    expect(metric(text, "shoal_store_bytes")).toBeLessThanOrEqual(20000);
  });

  it("answers a made-up token with the same status whatever its last character, upgrade and probe alike", async () => {
    const relay = await withDefaults();
    const { space, token } = claimedSpace();
    await ready(relay, space, token);
    const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const upgrade = new Set<number>();
    const probe = new Set<number>();
    // 32 bytes are 43 characters with 2 spare bits in the last: every last character once.
    const stem = encodeBase64Url(newToken()).slice(0, 42);
    for (const last of alphabet) {
      const text = stem + last;
      upgrade.add(await upgradeStatus(relay, space, ["shoal.1", `shoal-token.${text}`]));
      const res = await fetch(`${relay.url}/sync/${space}/access`, { method: "POST", body: text });
      probe.add(res.status);
    }
    expect([...upgrade]).toEqual([403]);
    expect([...probe]).toEqual([403]);
  });

  it("names no metric both X and X_total (OpenMetrics)", async () => {
    const relay = await withDefaults();
    const names = new Set(
      (await metricsText(relay))
        .split("\n")
        .filter((l) => l.startsWith("# TYPE "))
        .map((l) => l.split(" ")[2]!),
    );
    for (const name of names) expect(names.has(`${name}_total`), name).toBe(false);
  });
});

describe("relay serving the app (--static)", () => {
  it("allows only the app's own Origin by default and sends strict security headers", async () => {
    const dir = mkdtempSync(join(tmpdir(), "shoal-static-"));
    dirs.push(dir);
    writeFileSync(join(dir, "index.html"), "<!doctype html><title>app</title>");
    const relay = await start(["--static", dir]);
    const { space, token, claim } = claimedSpace();
    const offer = offeredSubprotocols(token, claim);
    expect(await upgradeStatus(relay, space, offer, { origin: "http://evil.example" })).toBe(403);
    expect(await upgradeStatus(relay, space, offer, { origin: relay.url })).toBe(0);
    // The same with `localhost`: the Host header the browser sent is the relay's own origin.
    const local = relay.url.replace("127.0.0.1", "localhost");
    const ws = new WebSocket(`${local.replace("http", "ws")}/sync/${space}`, offer, { origin: local });
    await once(ws, "open");
    ws.terminate();
    const probe = await fetch(`${relay.url}/sync/${space}/access`, {
      method: "POST",
      headers: { Origin: "http://evil.example" },
      body: "x",
    });
    expect(probe.status).toBe(403);
    const page = await fetch(`${relay.url}/`);
    expect(page.headers.get("content-security-policy")).toContain("frame-ancestors 'none'");
    expect(page.headers.get("content-security-policy")).toContain("'wasm-unsafe-eval'");
    expect(page.headers.get("x-content-type-options")).toBe("nosniff");
    expect(page.headers.get("x-frame-options")).toBe("DENY");
    expect(page.headers.get("referrer-policy")).toBe("no-referrer");
  });

  it("widens the allow-list with --origin (self kept only when listed)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "shoal-static-"));
    dirs.push(dir);
    writeFileSync(join(dir, "index.html"), "<!doctype html><title>app</title>");
    const relay = await start(["--static", dir, "--origin", "self", "--origin", "https://app.example"]);
    const { space, token, claim } = claimedSpace();
    const offer = offeredSubprotocols(token, claim);
    expect(await upgradeStatus(relay, space, offer, { origin: "https://app.example" })).toBe(0);
    expect(await upgradeStatus(relay, space, offer, { origin: relay.url })).toBe(0);
    expect(await upgradeStatus(relay, space, offer, { origin: "http://evil.example" })).toBe(403);
  });
});

/** The relay CLI with extra environment variables (for the SHOAL_* limits). */
async function startRelayProcessWithEnv(env: Record<string, string>): Promise<RelayProcess> {
  const saved = { ...process.env };
  Object.assign(process.env, env);
  try {
    return await start([]);
  } finally {
    for (const key of Object.keys(env)) {
      if (saved[key] === undefined) delete process.env[key];
      else process.env[key] = saved[key];
    }
  }
}
