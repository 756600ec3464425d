// Issue 12, item 4: no protocol cliff at 4,096 devices. A space whose commits come from 10,000 device
// ids (honest growth reaches that: every reinstall or wiped browser is a new device id) keeps syncing
// to a fresh device through a real relay process, and over a peer link. Before protocol 2 a `welcome`
// could carry at most 4,096 entries, so every `hello` of such a space failed for good.
//
// The commits are sealed for real and opened by the real session and sealer; the fresh device's
// replica is a recording stand-in (it keeps what it is given, in order), so the test measures the
// protocol path rather than 10,000 IndexedDB inserts in fake-indexeddb.
import { afterEach, describe, expect, it } from "vitest";
import { deriveRelayToken } from "../../src/crypto/keys.ts";
import { openDatabase, type Database } from "../../src/index.ts";
import {
  MIN_PROTOCOL_VERSION,
  PROTOCOL_VERSION,
  decodeBase64Url,
  fromHex,
} from "../../src/protocol/index.ts";
import type { ApplyReport } from "../../src/replica/apply-remote.ts";
import type { Commit } from "../../src/replica/commit.ts";
import type { SpaceRow } from "../../src/replica/stored-rows.ts";
import { PeerResponder } from "../../src/sync/peer-responder.ts";
import { SpaceSealer } from "../../src/sync/sealer.ts";
import { SpaceSession, type SessionReplica } from "../../src/sync/space-session.ts";
import { dataChannelPair } from "../../src/transports/data-channel-pair.ts";
import { openDataChannelLink, webRtcTransport } from "../../src/transports/webrtc-transport.ts";
import type { Transport } from "../../src/sync/transport.ts";
import type { ShoalError } from "../../src/errors.ts";
import type { DeviceId, SpaceId, VersionVector } from "../../src/types.ts";
import { connect } from "../../../sync-server/test/ws-client.ts";
import { craftDeviceCommits, type CraftedCommit } from "../crafted-commits.ts";
import { disposeAllRelays, RelayHarness, relayTransport } from "../relay-harness.ts";

const DEVICES = Number(process.env.SHOAL_MANY_DEVICES ?? 10_000);
const WAIT_MS = 120_000;
const cleanups: (() => unknown)[] = [];

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  await disposeAllRelays();
});

type P = { name: string; ward: string; notes: string };
let n = 0;
async function member(): Promise<{ db: Database<{ patients: P }>; key: Uint8Array; space: SpaceId }> {
  const db = await openDatabase<{ patients: P }>({
    name: `many-devices-${process.pid}-${n++}`,
    collections: { patients: { indexes: "id, name, ward", text: ["notes"] } },
    persist: false,
  });
  cleanups.push(() => db.close());
  const space = await db.createSpace({ name: "Many devices" });
  const key = (await db.replica.dexie.table<SpaceRow>("_spaces").get(space.id))!.key;
  return { db, key, space: space.id };
}

/** A fresh device's replica that keeps the commits it is given in order and resolves once it holds `want`. */
function recordingReplica(space: SpaceId, want: number) {
  const held = new Map<string, number>();
  let resolve!: () => void;
  const done = new Promise<void>((r) => (resolve = r));
  const replica: SessionReplica = {
    device: "f".repeat(32) as DeviceId,
    vector: async (): Promise<VersionVector> => ({ [space]: Object.fromEntries(held) }),
    applyCommits: async (commits: readonly Commit[]): Promise<ApplyReport> => {
      const applied = [];
      let duplicates = 0;
      for (const c of commits) {
        const have = held.get(c.device) ?? 0;
        if (c.seq <= have) duplicates++;
        else if (c.seq === have + 1) {
          held.set(c.device, c.seq);
          applied.push(c.id);
        }
      }
      if (held.size >= want) resolve();
      return { applied, duplicates, pending: 0, rejected: [], quarantined: [] };
    },
    recordAcks: async () => {},
    readSnapshot: () => Promise.reject(new Error("not publishing")),
    importSnapshot: async () => false,
  };
  return { replica, held, done };
}

/** Resolves `p`, or rejects after WAIT_MS saying what did not happen. */
function within<T>(p: Promise<T>, what: string, progress: () => string): Promise<T> {
  let timer: ReturnType<typeof setTimeout>;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out: ${what} (${progress()})`)), WAIT_MS);
    }),
  ]);
}

/** The fresh device's session over `transport`, with the real sealer; errors are collected. */
async function freshSession(space: SpaceId, key: Uint8Array, transport: Transport, token: Uint8Array) {
  const { db } = await member(); // only for its `_sealed` table, which the sealer keeps commits in
  const fresh = recordingReplica(space, DEVICES);
  const errors: ShoalError[] = [];
  const session = new SpaceSession({
    space,
    replica: fresh.replica,
    sealer: new SpaceSealer(db.replica.dexie, space, key),
    transport,
    token,
    spaceKey: key,
    snapshots: { bootstrap: true, publishEvery: 0 },
    hooks: { state: () => {}, error: (e) => errors.push(e), synced: () => {}, acked: () => {} },
  });
  cleanups.push(() => session.stop());
  return { session, errors, ...fresh };
}

describe(`a space of ${DEVICES} devices`, () => {
  it("syncs through a real relay process to a fresh device", { timeout: 300_000 }, async () => {
    const relay = await RelayHarness.start(["--quiet"]);
    const { key, space } = await member();
    const crafted = await craftDeviceCommits(space, key, DEVICES, "D");

    // Uploaded as any member's device re-uploads what it holds: in frames of up to ~900 KB.
    const token = decodeBase64Url(await deriveRelayToken(key, fromHex(space, 16)));
    const uploader = await connect(relay.url.replace("http", "ws"), space, token);
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

    // A fresh device connects: the relay's welcome names 10,000 devices, its pulls grow past 4,096.
    const fresh = await freshSession(space, key, relayTransport(relay.url), token);
    fresh.session.start();
    await within(fresh.done, `the fresh device to hold all ${DEVICES} devices`, () => `${fresh.held.size}`);
    expect(fresh.errors).toEqual([]);
    expectAllOf(crafted, fresh.held);
    // A snapshot's vector is one frame (at most 4,096 devices): such a space is not published, which
    // is no error (its new devices bootstrap from commits, as this one did).
    expect(await fresh.session.publishSnapshot()).toBe(false);
    expect(fresh.errors).toEqual([]);
  });

  it("syncs over a peer link to a fresh device", { timeout: 300_000 }, async () => {
    const { key, space } = await member();
    const crafted = await craftDeviceCommits(space, key, DEVICES, "P");
    // The answering peer's replica holds the 10,000 devices' commits (a stand-in over the crafted
    // list, in this order); its responder is the real one.
    const bySeal = new Map(crafted.map((c) => [c.commit.device, c]));
    const [mine, theirs] = dataChannelPair();
    const peerDevice = "e".repeat(32) as DeviceId;
    const fresh = await freshSession(
      space,
      key,
      webRtcTransport({ channel: mine, peer: peerDevice }),
      new Uint8Array(0),
    );
    const responder = new PeerResponder({
      space,
      peer: fresh.replica.device,
      replica: {
        device: peerDevice,
        vector: async () => ({ [space]: Object.fromEntries(crafted.map((c) => [c.commit.device, 1])) }),
        applyCommits: () => Promise.reject(new Error("the fresh device uploads nothing")),
        exportCommits: async (since, options) => {
          const have = since[space] ?? {};
          const out = crafted.filter((c) => (have[c.commit.device] ?? 0) < 1).map((c) => c.commit);
          return out.slice(0, options?.limit ?? out.length);
        },
      },
      sealer: {
        sealedRange: async (device) => [bySeal.get(device)!.sealed],
        open: () => Promise.reject(new Error("the fresh device uploads nothing")),
        screen: async (opened) => [...opened],
        keep: async () => {},
      },
      connect: (h) => openDataChannelLink(theirs, h),
      hooks: { state: () => {}, error: (e) => fresh.errors.push(e) },
    });
    cleanups.push(() => responder.stop());
    responder.start();
    fresh.session.start();
    await within(fresh.done, `the fresh device to hold all ${DEVICES} devices`, () => `${fresh.held.size}`);
    expect(fresh.errors).toEqual([]);
    expectAllOf(crafted, fresh.held);
  });
});

function expectAllOf(crafted: readonly CraftedCommit[], held: ReadonlyMap<string, number>): void {
  expect(held.size).toBe(crafted.length);
  expect(crafted.every((c) => held.get(c.commit.device) === 1)).toBe(true);
}
