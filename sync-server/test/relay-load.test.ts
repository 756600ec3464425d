import { once } from "node:events";
import { readdirSync, readFileSync } from "node:fs";
import { connect as tcpConnect, type Socket } from "node:net";
import WebSocket from "ws";
import { afterAll, describe, expect, it } from "vitest";
import { encodeMessage, fromHex, offeredSubprotocols, type VectorEntry } from "@shoal/client/protocol";
import { makeChain, randomId, sha256, testDevice } from "../src/store/commit-fixtures.ts";
import { startRelayProcess, type RelayProcess } from "./relay-process.ts";
import { connectReady, type TestClient } from "./ws-client.ts";
import { claimedSpace, claimOf } from "../src/testing/claimed-space.ts";

// Issue 12, item 8: strangers connect, flood and stall against a real relay process on loopback while
// a well-behaved client of another space uploads and pulls. The relay's memory and file descriptors
// must stay under what its caps allow, and the honest client must be served throughout. Bounded: a
// fixed number of connections from four loopback addresses for ATTACK_MS. Figures: docs/RELIABILITY.md.

const MiB = 1024 * 1024;
const ATTACK_MS = 8000;
const ATTACKERS = ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"];
const LIMITS = {
  maxConnections: 120,
  maxConnectionsPerAddress: 30,
  maxFrameBytes: 128 * 1024,
  maxSnapshotBytes: 8 * MiB,
  maxUploadBufferBytes: 16 * MiB,
  connectionBytesPerSecond: 2 * MiB,
  spaceBytesPerSecond: 4 * MiB,
  newSpacesPerHour: 3,
};
const ARGS = [
  ...["--max-connections", String(LIMITS.maxConnections)],
  ...["--max-connections-per-address", String(LIMITS.maxConnectionsPerAddress)],
  ...["--max-frame-bytes", String(LIMITS.maxFrameBytes)],
  ...["--max-snapshot-bytes", String(LIMITS.maxSnapshotBytes)],
  ...["--max-upload-buffer-bytes", String(LIMITS.maxUploadBufferBytes)],
  ...["--connection-bytes-per-second", String(LIMITS.connectionBytesPerSecond)],
  ...["--space-bytes-per-second", String(LIMITS.spaceBytesPerSecond)],
  ...["--new-spaces-per-hour", String(LIMITS.newSpacesPerHour)],
  ...["--headers-timeout-ms", "2000", "--request-timeout-ms", "4000"],
];

const opened: { close(): void }[] = [];
let relay: RelayProcess | undefined;
afterAll(async () => {
  for (const o of opened) o.close();
  await relay?.stop();
});

/** VmRSS and VmHWM (peak) of a process, in bytes. */
function memory(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (field: string) =>
    Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? 0) * 1024;
  return { rss: kb("VmRSS"), peak: kb("VmHWM") };
}

function openFds(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

function tcp(port: number, localAddress: string): Socket {
  const socket = tcpConnect({ host: "127.0.0.1", port, localAddress });
  socket.on("error", () => {});
  opened.push({ close: () => socket.destroy() });
  return socket;
}

/** A stranger's WebSocket to a space of its own; resolves once open, or undefined when refused. */
async function strangerSocket(wsUrl: string, space: string, token: Uint8Array, from: string) {
  const ws = new WebSocket(`${wsUrl}/sync/${space}`, offeredSubprotocols(token, claimOf(space)), {
    localAddress: from,
  });
  ws.on("error", () => {});
  opened.push({ close: () => ws.terminate() });
  const outcome = await Promise.race([
    once(ws, "open").then(() => true),
    once(ws, "unexpected-response").then(() => false),
    once(ws, "close").then(() => false),
  ]).catch(() => false);
  if (!outcome) return undefined;
  ws.send(encodeMessage({ type: "hello", minVersion: 2, maxVersion: 2, device: fromHex(randomId(), 16) }));
  return ws;
}

function snapshotPart(space: string, part: number, parts: number, bytes: number): Uint8Array {
  return encodeMessage(
    {
      type: "snapshot-put",
      space: fromHex(space, 16),
      vector: [],
      part,
      parts,
      bytes: new Uint8Array(bytes),
    },
    { maxFrameBytes: LIMITS.maxFrameBytes },
  );
}

/** Everything one stranger address does at once, until `until`. */
async function attackFrom(wsUrl: string, port: number, from: string, until: number): Promise<void> {
  const partBytes = LIMITS.maxFrameBytes - 1024;
  // Slow headers: sockets that start a request and never finish it.
  for (let i = 0; i < 12; i++) tcp(port, from).write("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ");
  // New spaces with made-up tokens: a few are registered, the rest refused.
  const spaces: { space: string; token: Uint8Array }[] = [];
  for (let i = 0; i < 8; i++) {
    const { space, token } = claimedSpace();
    const ws = await strangerSocket(wsUrl, space, token, from);
    if (ws) {
      spaces.push({ space, token });
      ws.terminate();
    }
  }
  const own = spaces[0];
  if (!own) return;
  const tasks: Promise<unknown>[] = [];
  // Stalled snapshot uploads: each sends 4 MiB of an 8 MiB snapshot, then only answers pings.
  for (let i = 0; i < 5; i++) {
    tasks.push(
      (async () => {
        const ws = await strangerSocket(wsUrl, own.space, own.token, from);
        for (let part = 0; ws && part < (4 * MiB) / partBytes; part++)
          ws.send(snapshotPart(own.space, part, 64, partBytes));
      })(),
    );
  }
  // Never-finished fragmented messages, just under the frame cut-off.
  for (let i = 0; i < 3; i++) {
    tasks.push(
      (async () => {
        const ws = await strangerSocket(wsUrl, own.space, own.token, from);
        ws?.send(new Uint8Array(LIMITS.maxFrameBytes), { fin: false, binary: true });
      })(),
    );
  }
  // Floods: as fast as the socket drains, parts of a snapshot too large to be kept.
  for (let i = 0; i < 2; i++) {
    tasks.push(
      (async () => {
        const ws = await strangerSocket(wsUrl, own.space, own.token, from);
        let part = 0;
        while (ws && ws.readyState === ws.OPEN && Date.now() < until) {
          if (ws.bufferedAmount < 4 * MiB) ws.send(snapshotPart(own.space, part++, 65_535, partBytes));
          else await new Promise((r) => setTimeout(r, 20));
        }
      })(),
    );
  }
  // More sockets than the address may hold.
  for (let i = 0; i < 20; i++) tcp(port, from);
  await Promise.all(tasks);
}

describe("relay under strangers' load (real relay process, loopback)", () => {
  it("keeps memory and file descriptors under its caps and serves an honest client throughout", async () => {
    relay = await startRelayProcess(["--quiet", "--store", "memory", ...ARGS]);
    const pid = relay.child.pid!;
    const port = Number(new URL(relay.url).port);
    const { space, token } = claimedSpace();
    const writer: TestClient = await connectReady(relay.wsUrl, space, token, randomId());
    const reader: TestClient = await connectReady(relay.wsUrl, space, token, randomId());
    opened.push({ close: () => writer.ws.terminate() }, { close: () => reader.ws.terminate() });
    const before = { ...memory(pid), fds: openFds(pid) };

    const until = Date.now() + ATTACK_MS;
    const attack = Promise.all(ATTACKERS.map((from) => attackFrom(relay!.wsUrl, port, from, until)));
    let maxFds = 0;
    const sampler = setInterval(() => (maxFds = Math.max(maxFds, openFds(pid))), 100);

    // The honest device uploads a batch of 10 commits and its other device pulls it, over and over.
    const device = testDevice();
    let prevHash: Uint8Array | undefined;
    let seq = 0;
    let rounds = 0;
    let slowestRoundMs = 0;
    const vector = new Map<string, number>();
    while (Date.now() < until) {
      const started = performance.now();
      const batch = makeChain(space, device, 10, { from: seq + 1, prevHash, bodyBytes: 200 });
      const from = writer.frames.length;
      writer.send({ type: "commits", space: fromHex(space, 16), commits: batch, more: false });
      const ack = await writer.next("ack", from);
      expect(ack.entries[0]!.seq).toBe(seq + 10);
      seq += 10;
      prevHash = sha256(batch.at(-1)!);
      const at = reader.frames.length;
      const asked: VectorEntry[] = [...vector].map(([d, s]) => ({ device: fromHex(d, 16), seq: s }));
      reader.send({ type: "pull", space: fromHex(space, 16), vector: asked, maxBytes: 1 << 20 });
      const reply = await waitReply(reader, at);
      vector.set(device, (vector.get(device) ?? 0) + reply);
      expect(vector.get(device)).toBe(seq);
      rounds += 1;
      slowestRoundMs = Math.max(slowestRoundMs, performance.now() - started);
      // Pacing, not waiting for an event: a well-behaved device stays far below the frame rate limit.
      await new Promise((r) => setTimeout(r, 50));
    }
    await attack;
    clearInterval(sampler);
    maxFds = Math.max(maxFds, openFds(pid));
    const after = memory(pid);
    const text = await (await fetch(`${relay.url}/metrics`)).text();
    const counted = (reason: string) =>
      Number(new RegExp(`^shoal_refusals_total\\{reason="${reason}"\\} (\\d+)`, "m").exec(text)?.[1] ?? 0);

    // What the caps allow: every connection slot holding a fragment up to twice the frame limit, plus
    // the upload budget, plus a margin for the runtime's own growth under load (JIT, GC headroom).
    const allowedGrowth =
      LIMITS.maxConnections * 2 * LIMITS.maxFrameBytes + LIMITS.maxUploadBufferBytes + 64 * MiB;
    const figures = {
      rounds,
      slowestRoundMs: Math.round(slowestRoundMs),
      rssBeforeMiB: +(before.rss / MiB).toFixed(1),
      peakRssMiB: +(after.peak / MiB).toFixed(1),
      allowedPeakMiB: +((before.rss + allowedGrowth) / MiB).toFixed(1),
      fdsBefore: before.fds,
      maxFds,
      refusals: Object.fromEntries(
        ["connections", "connections-per-address", "request-timeout", "new-spaces-rate", "upload-buffer"].map(
          (r) => [r, counted(r)],
        ),
      ),
      throttled: counted("connection-bytes-rate") + counted("space-bytes-rate"),
    };
    console.log(`relay under load: ${JSON.stringify(figures)}`);
    expect(rounds).toBeGreaterThan(0);
    expect(after.peak).toBeLessThan(before.rss + allowedGrowth);
    expect(maxFds).toBeLessThanOrEqual(before.fds + LIMITS.maxConnections);
    expect(figures.refusals["connections-per-address"]).toBeGreaterThan(0);
    expect(figures.refusals["new-spaces-rate"]).toBeGreaterThan(0);
    expect(figures.refusals["upload-buffer"]).toBeGreaterThan(0);
    expect(figures.throttled).toBeGreaterThan(0);

    // And once the strangers are gone, the honest device still gets everything.
    for (const o of opened.splice(2)) o.close();
    let held = 0;
    for (;;) {
      const at = reader.frames.length;
      const asked = held === 0 ? [] : [{ device: fromHex(device, 16), seq: held }];
      reader.send({ type: "pull", space: fromHex(space, 16), vector: asked, maxBytes: 1 << 20 });
      const got = await waitReply(reader, at);
      if (got === 0) break;
      held += got;
    }
    expect(held).toBe(seq);
  });
});

/** Waits for the pull reply after frame index `from`; returns how many commits it carried. */
async function waitReply(c: TestClient, from: number): Promise<number> {
  for (;;) {
    const frame = await c.next("commits", from);
    if (frame.reply) return frame.commits.length;
    from = c.frames.indexOf(frame) + 1;
  }
}
