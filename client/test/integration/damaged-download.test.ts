// Issue 12 item 10(a): a commit damaged between the relay and a device (one bit flipped by a proxy on
// loopback, in front of a real relay process) was recorded as refused and then treated as held: that
// session never fetched it again nor any later commit of its author, while db.status said `synced`.
// Now the damaged download is fetched again with backoff, status says which commit is missing while it
// is, and `synced` comes only once every commit is held.
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { Duplex } from "node:stream";
import { afterEach, describe, expect, it } from "vitest";
import { WebSocket, WebSocketServer, type RawData } from "ws";
import type { SyncStatus } from "../../src/index.ts";
import { decodeMessage, encodeMessage } from "../../src/protocol/index.ts";
import {
  RelayHarness,
  closeAllDevices,
  disposeAllRelays,
  openDevice,
  patientCollections,
  relayAcknowledged,
  relayTransport,
  type Patient,
} from "../relay-harness.ts";
import { waitFor } from "../wait-for.ts";

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  await closeAllDevices();
  await disposeAllRelays();
});

/**
 * A WebSocket proxy on loopback in front of `relay`: frames pass both ways unchanged, except that the
 * first `commits` frame carrying commits in the given direction (`down`: relay to device, `up`: device
 * to relay) has one bit of its first commit flipped.
 */
async function bitFlippingProxy(
  relay: RelayHarness,
  direction: "down" | "up" = "down",
): Promise<{ url: string; flipped: () => number }> {
  let flips = 0;
  const wss = new WebSocketServer({
    noServer: true,
    handleProtocols: (_offered, req) =>
      (req as IncomingMessage & { upstream?: WebSocket }).upstream!.protocol,
  });
  const server: Server = createServer((_req, res) => res.writeHead(404).end());
  server.on("upgrade", (req: IncomingMessage & { upstream?: WebSocket }, socket: Duplex, head: Buffer) => {
    const offered = String(req.headers["sec-websocket-protocol"] ?? "")
      .split(",")
      .map((p) => p.trim())
      .filter(Boolean);
    const up = new WebSocket(`ws://127.0.0.1:${relay.port}${req.url}`, offered);
    up.binaryType = "nodebuffer";
    up.once("unexpected-response", () => socket.destroy());
    up.once("error", () => socket.destroy());
    up.once("open", () => {
      req.upstream = up;
      wss.handleUpgrade(req, socket, head, (client) => {
        const flip = (data: RawData, toward: "down" | "up"): Uint8Array => {
          let frame: Uint8Array = new Uint8Array(data as Buffer);
          const m = decodeMessage(frame);
          if (toward === direction && flips === 0 && m.type === "commits" && m.commits.length > 0) {
            const damaged = m.commits[0]!.slice();
            damaged[damaged.length - 20]! ^= 0x08; // inside the ciphertext
            frame = encodeMessage({ ...m, commits: [damaged, ...m.commits.slice(1)] });
            flips++;
          }
          return frame;
        };
        client.on("message", (data: RawData) => up.readyState === up.OPEN && up.send(flip(data, "up")));
        up.on(
          "message",
          (data: RawData) => client.readyState === client.OPEN && client.send(flip(data, "down")),
        );
        client.on("close", () => up.close());
        up.on("close", () => client.close());
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        for (const c of wss.clients) c.terminate();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  );
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("no TCP address");
  return { url: `http://127.0.0.1:${address.port}`, flipped: () => flips };
}

describe("a commit damaged on its way from the relay", () => {
  it("is fetched again; the device ends with every commit and says synced only then", async () => {
    const relay = await RelayHarness.start();
    const a = await openDevice<{ patients: Patient }>("author", patientCollections);
    const space = await a.db.createSpace({ name: "Ward" });
    a.online(relay.url);
    for (let i = 1; i <= 5; i++)
      await a.db.patients.insert({ name: `P${i}`, ward: "A", notes: "" }, { space });
    await relayAcknowledged(a.db, space.id);

    const proxy = await bitFlippingProxy(relay);
    const v = await openDevice<{ patients: Patient }>("victim", patientCollections);
    await v.db.join(await a.db.invite(space, "https://app.example/"));
    const seen: SyncStatus[] = [];
    let holdsAllWhenFirstSynced: Promise<boolean> | null = null;
    const sub = v.db.status.subscribe((s) => {
      seen.push(s);
      // (Before the space's own connection is up, "synced" speaks only of the device's private space.)
      const shared = s.transports.find((t) => t.space === space.id);
      if (s.state === "synced" && shared?.state === "connected" && !holdsAllWhenFirstSynced)
        holdsAllWhenFirstSynced = v.db.vector([space.id]).then((x) => x[space.id]?.[a.db.deviceId] === 5);
    });
    cleanups.push(() => sub.unsubscribe());
    const stop = v.db.sync({
      transports: [relayTransport(proxy.url)],
      backoff: { baseMs: 20, maxMs: 200 },
      leaderElection: false,
    });
    cleanups.push(stop);

    await waitFor(
      v.db.live(async () => (await v.db.vector([space.id]))[space.id]?.[a.db.deviceId] ?? 0),
      (seq) => seq === 5,
      20_000,
      "the victim to hold all five commits",
    );
    await waitFor(v.db.status, (s) => s.state === "synced", 20_000, "synced");
    expect(proxy.flipped()).toBe(1);
    expect(await holdsAllWhenFirstSynced).toBe(true);
    expect((await v.db.patients.orderBy("name").toArray()).map((p) => p.name)).toEqual([
      "P1",
      "P2",
      "P3",
      "P4",
      "P5",
    ]);
    // While it was missing, status said which commit, and never `synced`.
    const missing = seen.filter((s) => (s.missing ?? []).length > 0);
    expect(missing.length).toBeGreaterThan(0);
    expect(missing[0]!.missing).toEqual([
      { space: space.id, device: a.db.deviceId, seq: 1, reason: "retrying" },
    ]);
    expect(missing.every((s) => s.state !== "synced")).toBe(true);
    expect(v.db.status.get().missing).toBeUndefined();
  });

  it("damaged in the relay's store: while its author is away, the relay serves the same bad bytes again, so it is given up on as bad at its source and status never says synced; the author back replaces it and all is synced", async () => {
    const relay = await RelayHarness.start();
    const a = await openDevice<{ patients: Patient }>("author", patientCollections);
    const space = await a.db.createSpace({ name: "Ward" });
    // Damage in transit is refused by the relay now (the signature); the relay's own copy can still go
    // bad where it is stored, which this test makes happen while the relay is down.
    const stopA = a.db.sync({ transports: [relayTransport(relay.url)], leaderElection: false });
    cleanups.push(stopA);
    await a.db.patients.insert({ name: "P1", ward: "A", notes: "" }, { space });
    await waitFor(
      a.db.live(async () => (await a.db.durability(`${space.id}.${a.db.deviceId}.1` as never)).relay),
      (acked) => acked,
      20_000,
      "the relay to take commit 1",
    );
    // The author goes away before it learns of the damage (its next commit would show it: see
    // stuck-upload.test.ts, where it replaces the copy at once).
    stopA();
    await relay.stop();
    relay.damageStored(space.id, a.db.deviceId, 1);
    await relay.restart();
    await a.db.patients.insert({ name: "P2", ward: "A", notes: "" }, { space });

    // Another device gets the damaged commit 1 from the relay twice, byte-identical: bad at its source.
    const v = await openDevice<{ patients: Patient }>("victim", patientCollections);
    await v.db.join(await a.db.invite(space, "https://app.example/"));
    const seen: SyncStatus[] = [];
    const sub = v.db.status.subscribe((s) => seen.push(s));
    cleanups.push(() => sub.unsubscribe());
    const stopV = v.db.sync({
      transports: [relayTransport(relay.url)],
      backoff: { baseMs: 20, maxMs: 200 },
      leaderElection: false,
    });
    cleanups.push(stopV);
    const report = await waitFor(
      v.db.integrity,
      (r) => r.entries.some((e) => e.kind === "bad-at-source"),
      20_000,
      "the commit reported bad at its source",
    );
    expect(report.entries).toMatchObject([
      { kind: "bad-at-source", space: space.id, device: a.db.deviceId, seq: 1, refused: { source: "relay" } },
    ]);
    const status = await waitFor(
      v.db.status,
      (s) => (s.missing ?? []).some((m) => m.reason === "bad-at-source"),
      20_000,
      "status to say which commit is missing",
    );
    expect(status.missing).toEqual([
      { space: space.id, device: a.db.deviceId, seq: 1, reason: "bad-at-source" },
    ]);
    expect(status.flagged).toEqual([
      { space: space.id, device: a.db.deviceId, kind: "bad-at-source", seq: 1 },
    ]);
    expect(
      seen
        .filter((s) => s.transports.find((t) => t.space === space.id)?.state === "connected")
        .every((s) => s.state !== "synced"),
    ).toBe(true);

    // The author comes back: the relay refuses its commit 2 (chain), so the author replaces its damaged
    // commit 1 with the intact bytes it holds (PROTOCOL.md section 5), and the other device, asking
    // again on its next connection, gets both.
    const stopA2 = a.db.sync({ transports: [relayTransport(relay.url)], leaderElection: false });
    cleanups.push(stopA2);
    await waitFor(a.db.status, (s) => s.pendingCommits === 0, 20_000, "the author to have nothing pending");
    v.db.reconnect();
    await waitFor(
      v.db.patients.live((c) => c.orderBy("name")),
      (rows) => rows.map((r) => r.name).join() === "P1,P2",
      20_000,
      "the other device to hold P1 and P2",
    );
    await waitFor(
      v.db.status,
      (s) => s.state === "synced" && (s.missing ?? []).length === 0,
      20_000,
      "the other device synced, nothing missing",
    );
  });
});
