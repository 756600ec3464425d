// Issue 12, item 4: no protocol cliff at 4,096 devices, and no quadratic cost beyond it. A space whose
// commits come from 10,000 device ids (honest growth reaches that: every reinstall or wiped browser is
// a new device id) keeps syncing to a fresh device, a real database on fake-indexeddb, through a real
// relay process and over a peer link whose answering side is a real responder over a real replica.
// Before protocol 2 a `welcome` could carry at most 4,096 entries, so every `hello` of such a space
// failed for good; before the vector reads were made proportional, a fresh device stalled for minutes
// (every vector read walked an index cursor whose steps each cost the whole space, and every applied
// chunk re-read every device's vector and ack).
import { afterEach, describe, expect, it } from "vitest";
import { deriveRelayToken } from "../../src/crypto/keys.ts";
import type { ShoalError } from "../../src/errors.ts";
import {
  MIN_PROTOCOL_VERSION,
  PROTOCOL_VERSION,
  decodeBase64Url,
  fromHex,
} from "../../src/protocol/index.ts";
import type { SpaceRow } from "../../src/replica/stored-rows.ts";
import { recordAcks } from "../../src/sync/acks.ts";
import { PeerResponder } from "../../src/peer/peer-responder.ts";
import { SpaceSealer } from "../../src/sealing/sealer.ts";
import { SpaceSession } from "../../src/sync/space-session.ts";
import { dataChannelPair } from "../../src/transports/data-channel-pair.ts";
import { openDataChannelLink, webRtcTransport } from "../../src/transports/webrtc-transport.ts";
import type { SpaceId } from "../../src/types.ts";
import { connect } from "../../../sync-server/test/ws-client.ts";
import { craftDeviceCommits, type CraftedCommit } from "../crafted-commits.ts";
import {
  closeAllDevices,
  disposeAllRelays,
  openDevice,
  patientCollections,
  RelayHarness,
  type Device,
  type Patient,
} from "../relay-harness.ts";
import { waitFor } from "../wait-for.ts";

const DEVICES = Number(process.env.SHOAL_MANY_DEVICES ?? 10_000);
/** Far above what it takes (about 15 s through the relay on a loaded 2-core machine), far below a stall. */
const WAIT_MS = 150_000;
const cleanups: (() => unknown)[] = [];

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  await closeAllDevices();
  await disposeAllRelays();
});

type Db = Device<{ patients: Patient }>;

/** A member with a new space, and the fresh device `b` that joined it (nothing synced yet). */
async function spaceWithFreshDevice(): Promise<{
  a: Db;
  b: Db;
  space: SpaceId;
  key: Uint8Array;
  claim: Uint8Array;
}> {
  const a = await openDevice<{ patients: Patient }>("many-a", patientCollections);
  const b = await openDevice<{ patients: Patient }>("many-b", patientCollections);
  const space = await a.db.createSpace({ name: "Many devices" });
  await b.db.join(await a.db.invite(space, "https://app.example/"));
  const { key, claim } = (await a.db.replica.dexie.table<SpaceRow>("_spaces").get(space.id))!;
  return { a, b, space: space.id, key, claim: claim! };
}

/** Resolves once `b` holds every crafted commit's record; reports how long it took. */
async function holdsAll(b: Db, what: string): Promise<void> {
  const started = Date.now();
  await waitFor(
    b.db.patients.live((c) => c.count()),
    (n) => n === DEVICES,
    WAIT_MS,
    what,
  );
  console.info(`${what}: ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

async function expectAllOf(b: Db, space: SpaceId, crafted: readonly CraftedCommit[], prefix: string) {
  const held = (await b.db.vector([space]))[space] ?? {};
  expect(Object.keys(held)).toHaveLength(crafted.length);
  expect(crafted.every((c) => held[c.commit.device] === 1)).toBe(true);
  // The rows are there, each once, under the names their devices wrote.
  for (const i of [0, DEVICES - 1])
    expect(await b.db.patients.where("name").equals(`${prefix}${i}`).count()).toBe(1);
}

describe(`a space of ${DEVICES} devices`, () => {
  it("syncs through a real relay process to a fresh device's database", { timeout: 300_000 }, async () => {
    const relay = await RelayHarness.start(["--quiet"]);
    const { b, space, key, claim } = await spaceWithFreshDevice();
    const crafted = await craftDeviceCommits(space, key, DEVICES, "D");

    // Uploaded as any member's device re-uploads what it holds: in frames of up to ~900 KB.
    const token = decodeBase64Url(await deriveRelayToken(key, fromHex(space, 16)));
    // The relay does not know the space yet: the uploader registers it with the creator's claim.
    const uploader = await connect(relay.url.replace("http", "ws"), space, token, { claim });
    uploader.send({
      type: "hello",
      minVersion: MIN_PROTOCOL_VERSION,
      maxVersion: PROTOCOL_VERSION,
      device: fromHex("ee".repeat(16), 16),
    });
    await uploader.next("welcome");
    const spaceBytes = fromHex(space, 16);
    for (let at = 0; at < crafted.length; at += 1000) {
      const from = uploader.frames.length;
      const commits = crafted.slice(at, at + 1000).map((c) => c.sealed);
      uploader.send({ type: "commits", space: spaceBytes, commits, more: false });
      expect((await uploader.next("ack", from)).entries).toHaveLength(commits.length);
    }
    expect(uploader.frames.filter((f) => f.type === "error")).toEqual([]);
    uploader.close();

    // The fresh device connects: the relay's welcome names 10,000 devices, its pulls grow past 4,096.
    b.online(relay.url);
    await holdsAll(b, `the fresh device to hold all ${DEVICES} devices through the relay`);
    await expectAllOf(b, space, crafted, "D");
    await waitFor(b.db.status, (s) => s.state === "synced", 30_000, "b synced");
    expect(b.db.status.get().lastError).toBeUndefined();
    // A snapshot's vector is one frame (at most 4,096 devices): such a space is not published, which
    // is no error (its new devices bootstrap from commits, as this one did).
    expect(await b.db.publishSnapshot(space)).toBe(false);
    expect(b.db.status.get().lastError).toBeUndefined();
  });

  it(
    "syncs over a peer link from a real replica to a fresh device's database",
    { timeout: 300_000 },
    async () => {
      const { a, b, space, key } = await spaceWithFreshDevice();
      const crafted = await craftDeviceCommits(space, key, DEVICES, "P");
      // The answering peer holds the 10,000 devices' commits in its database, sealed bytes kept, as
      // after receiving them from the relay.
      const aSealer = new SpaceSealer(a.db.replica.dexie, space, key);
      const applied = await a.db.applyCommits(crafted.map((c) => c.commit));
      expect(applied.applied).toHaveLength(DEVICES);
      await aSealer.keep(crafted, "relay");

      const errors: ShoalError[] = [];
      const [mine, theirs] = dataChannelPair();
      const responder = new PeerResponder({
        space,
        peer: b.db.deviceId,
        replica: {
          device: a.db.deviceId,
          vector: (spaces) => a.db.vector(spaces),
          applyCommits: (commits) => a.db.applyCommits(commits),
          exportCommits: (since, options) => a.db.exportCommits(since, options),
        },
        sealer: aSealer,
        connect: (h) => openDataChannelLink(theirs, h),
        hooks: { state: () => {}, error: (e) => errors.push(e) },
      });
      cleanups.push(() => responder.stop());
      // The fresh device's side of the link, as peer sessions are made (no snapshots between peers).
      const dexie = b.db.replica.dexie;
      const session = new SpaceSession({
        space,
        replica: {
          device: b.db.deviceId,
          vector: (spaces) => b.db.vector(spaces),
          applyCommits: (commits) => b.db.applyCommits(commits),
          recordAcks: (s, entries) => recordAcks(dexie, s, entries),
          readSnapshot: () => Promise.reject(new Error("peers keep no snapshots")),
          importSnapshot: async () => false,
        },
        sealer: new SpaceSealer(dexie, space, key),
        transport: webRtcTransport({ channel: mine, peer: a.db.deviceId }),
        token: new Uint8Array(0),
        spaceKey: key,
        snapshots: { bootstrap: false, publishEvery: 0 },
        hooks: { state: () => {}, error: (e) => errors.push(e), synced: () => {}, acked: () => {} },
      });
      cleanups.push(() => session.stop());
      responder.start();
      session.start();
      await holdsAll(b, `the fresh device to hold all ${DEVICES} devices over a peer link`);
      await expectAllOf(b, space, crafted, "P");
      expect(errors).toEqual([]);
    },
  );
});
