// Issue 12, item 10(b): a commit damaged between its author and the relay. Before commits were signed
// the relay stored it (it cannot check the tag), refused the author's next commit (`chain`), and the
// author stayed at `pendingCommits: 1` for ever until it learned to replace the damaged copy. Now the
// relay checks the signature, refuses the damaged copy at once (`signature`), stores nothing of it, and
// the author sends its intact bytes again. Through a real relay process and a loopback proxy that flips
// one bit in one of the author's uploaded commits.
import { createServer, type Server } from "node:http";
import { afterEach, describe, expect, it } from "vitest";
import { WebSocket, WebSocketServer, type RawData } from "ws";
import { MESSAGE_TYPE_BYTES, decodeMessage, toHex } from "../../src/protocol/index.ts";
import { waitFor } from "../wait-for.ts";
import {
  closeAllDevices,
  disposeAllRelays,
  freePort,
  openDevice,
  patientCollections,
  RelayHarness,
  relayAcknowledged,
  relayTransport,
  type Patient,
} from "../relay-harness.ts";

const device = (label: string) => openDevice<{ patients: Patient }>(label, patientCollections);
const cleanups: (() => unknown)[] = [];

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  await closeAllDevices();
  await disposeAllRelays();
});

/**
 * A WebSocket proxy on loopback in front of the relay: forwards every frame both ways unchanged,
 * except that once armed it flips one bit (the last byte: inside the last commit's signature) of
 * the next plain upload (`commits`, no flags) going to the relay, and records what it damaged.
 */
async function bitFlipProxy(target: string): Promise<{ url: string; arm(): void; damaged: Uint8Array[] }> {
  const port = await freePort();
  const server: Server = createServer();
  const wss = new WebSocketServer({
    server,
    handleProtocols: (offered) => (offered.has("shoal.1") ? "shoal.1" : false),
  });
  let armed = false;
  const damaged: Uint8Array[] = [];
  wss.on("connection", (client, request) => {
    const offered = String(request.headers["sec-websocket-protocol"] ?? "")
      .split(",")
      .map((p) => p.trim());
    const upstream = new WebSocket(`${target.replace("http", "ws")}${request.url}`, offered);
    const queue: Buffer[] = [];
    upstream.on("open", () => queue.splice(0).forEach((b) => upstream.send(b)));
    client.on("message", (data: RawData) => {
      const bytes = Buffer.from(data as Buffer);
      if (armed && bytes[1] === MESSAGE_TYPE_BYTES.commits && bytes[18] === 0) {
        armed = false;
        bytes[bytes.length - 1]! ^= 0x01;
        damaged.push(new Uint8Array(bytes));
      }
      if (upstream.readyState === WebSocket.OPEN) upstream.send(bytes);
      else queue.push(bytes);
    });
    upstream.on(
      "message",
      (data: RawData) => client.readyState === WebSocket.OPEN && client.send(data as Buffer),
    );
    client.on("close", () => upstream.close());
    upstream.on("close", (code) =>
      client.close(code >= 3000 || code === 1000 || code === 1001 ? code : 1000),
    );
    upstream.on("error", () => client.terminate());
  });
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        for (const c of wss.clients) c.terminate();
        wss.close();
        server.close(() => resolve());
      }),
  );
  return { url: `http://127.0.0.1:${port}`, arm: () => void (armed = true), damaged };
}

describe("an upload damaged on its way to the relay", () => {
  it("is refused by the relay and sent again intact by its author, who ends with nothing pending; another device gets every commit intact", async () => {
    const relay = await RelayHarness.start(["--quiet"]);
    const proxy = await bitFlipProxy(relay.url);
    const a = await device("author");
    const space = await a.db.createSpace({ name: "Transit damage" });
    a.online(proxy.url, relayTransport(proxy.url));

    await a.db.patients.insert({ name: "One", ward: "A", notes: "first" }, { space });
    await relayAcknowledged(a.db, space.id);
    // The second commit is damaged in transit: the relay refuses it (signature), and the author sends
    // it again; only the intact copy is acknowledged.
    proxy.arm();
    await a.db.patients.insert({ name: "Two", ward: "A", notes: "second" }, { space });
    await relayAcknowledged(a.db, space.id);
    expect(proxy.damaged).toHaveLength(1);
    const damagedCommit = decodeMessage(proxy.damaged[0]!.slice(), { maxCommitBytes: 1 << 20 });
    expect(damagedCommit.type === "commits" && damagedCommit.commits.length).toBe(1);

    // The next commit chains to the intact copy, which is what the relay holds.
    await a.db.patients.insert({ name: "Three", ward: "A", notes: "third" }, { space });
    await relayAcknowledged(a.db, space.id, 30_000);
    await waitFor(
      a.db.status,
      (s) => s.pendingCommits === 0 && s.state === "synced",
      30_000,
      "author synced",
    );
    // It went through the refusal of the damaged copy, and that is all there is.
    expect(a.db.status.get().lastError?.code).toBe("Relay:signature");

    // The relay now holds the author's intact bytes for every commit.
    const sealed = await a.db.replica.dexie
      .table<{ space: string; device: string; seq: number; bytes: Uint8Array }>("_sealed")
      .where("[space+device+seq]")
      .between([space.id, a.db.deviceId, 1], [space.id, a.db.deviceId, 3], true, true)
      .toArray();
    expect(sealed).toHaveLength(3);
    const damagedBytes = damagedCommit.type === "commits" ? damagedCommit.commits[0]! : new Uint8Array();
    expect(toHex(sealed[1]!.bytes)).not.toBe(toHex(damagedBytes));

    // Another device, joining afterwards, receives every commit intact.
    const c = await device("reader");
    await c.db.join(await a.db.invite(space, "https://app.example/"));
    c.online(relay.url);
    await waitFor(
      c.db.patients.live((q) => q.orderBy("name")),
      (rows) => rows.map((r) => `${r.name}:${r.notes}`).join() === "One:first,Three:third,Two:second",
      30_000,
      "the reader to receive all three commits",
    );
    expect(c.db.status.get().lastError).toBeUndefined();
  });

  // Found by the hostile fuzzer (seed 7047 of its soak): when the damaged commit is the author's last,
  // no next upload shows it, so every other device reported it bad at its source and waited for good.
  it("is replaced when it is the author's last commit, at the author's next connection", async () => {
    const relay = await RelayHarness.start(["--quiet"]);
    const proxy = await bitFlipProxy(relay.url);
    const a = await device("author");
    const space = await a.db.createSpace({ name: "Transit damage, last" });
    a.online(proxy.url, relayTransport(proxy.url));
    await a.db.patients.insert({ name: "One", ward: "A", notes: "first" }, { space });
    await relayAcknowledged(a.db, space.id);
    proxy.arm();
    await a.db.patients.insert({ name: "Two", ward: "A", notes: "second" }, { space });
    await relayAcknowledged(a.db, space.id);
    expect(proxy.damaged).toHaveLength(1);

    // No further commit: the author's next connection checks its last commit at the relay.
    a.db.reconnect();
    const c = await device("reader");
    await c.db.join(await a.db.invite(space, "https://app.example/"));
    c.online(relay.url);
    await waitFor(
      c.db.patients.live((q) => q.orderBy("name")),
      (rows) => rows.map((r) => `${r.name}:${r.notes}`).join() === "One:first,Two:second",
      30_000,
      "the reader to receive both commits intact",
    );
    await waitFor(c.db.status, (s) => s.state === "synced" && !s.missing?.length, 30_000, "reader synced");
  });
});
