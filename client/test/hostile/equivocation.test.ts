// Issue 12 item 3: a member holding the space key forges a second, different commit for a (device, seq)
// a replica already holds. Before, it counted as a duplicate and its bytes replaced the kept ones, so
// the real device's next commit failed the chain check on that replica for good. Now the first stays,
// the other is reported in db.integrity (equivocation), and the real device's later commits still
// apply; delivered through a bundle, a peer link and the relay connection. Also: a commit whose nonce
// is not the synthetic one is refused, and a commit kept aside unchecked is dropped once its
// predecessor shows it does not follow.
import { afterEach, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { deriveCommitKey, deriveNonceKey } from "../../src/crypto/keys.ts";
import { sealCommit, sha256 } from "../../src/crypto/seal.ts";
import { openDatabase, type Database, type Space } from "../../src/index.ts";
import {
  COMMIT_FORMAT_VERSION,
  decodeMessage,
  encodeCommitHeader,
  encodeMessage,
  fromHex,
  appendSignature,
  unsignedCommit,
  type Message,
} from "../../src/protocol/index.ts";
import type { Commit } from "../../src/replica/commit.ts";
import type { DeviceIdentity } from "../../src/identity/device-identity.ts";
import { SIGNING_LABELS, signBytes } from "../../src/identity/signing.ts";
import type { SpaceRow } from "../../src/replica/stored-rows.ts";
import { encodeBundle } from "../../src/bundles/bundle.ts";
import { encodeCommitPlaintext } from "../../src/sealing/commit-codec.ts";
import { PeerResponder } from "../../src/peer/peer-responder.ts";
import { SpaceSealer } from "../../src/sealing/sealer.ts";
import type { Transport, TransportHandlers } from "../../src/transports/transport.ts";
import { dataChannelPair } from "../../src/transports/data-channel-pair.ts";
import { openDataChannelLink } from "../../src/transports/webrtc-transport.ts";
import { webSocketTransport } from "../../src/transports/websocket-transport.ts";
import { RelayHarness, disposeAllRelays, relayTransport } from "../relay-harness.ts";
import { waitFor } from "../wait-for.ts";

type P = { name: string; ward: string; notes: string };
type Db = Database<{ patients: P }>;
const collections = { patients: { indexes: "id, name, ward", text: ["notes"] } };
let n = 0;
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  await disposeAllRelays();
});

async function device(label: string): Promise<Db> {
  const db = await openDatabase<{ patients: P }>({
    name: `equivocation-${label}-${process.pid}-${n++}`,
    collections,
    persist: false,
  });
  cleanups.push(() => db.close());
  return db;
}

async function sealerOf(db: Db, space: Space): Promise<SpaceSealer> {
  const row = (await db.replica.dexie.table<SpaceRow>("_spaces").get(space.id))!;
  return new SpaceSealer(db.replica.dexie, space.id, row.key);
}

/**
 * What the author's device can make (it holds its own signing key, and may be compromised): commit `c`
 * with another time, sealed exactly as Shoal seals (synthetic IV), signed by `signer`, and chained to
 * `prev` (or a made-up hash), or with a random nonce. With another member's `signer` the commit names
 * the wrong author and every receiver refuses it.
 */
async function forge(
  signer: DeviceIdentity,
  key: Uint8Array,
  c: Commit,
  prev: Uint8Array | null,
  opts: { at?: number; randomNonce?: boolean } = {},
): Promise<Uint8Array> {
  const device = fromHex(c.device, 16);
  const header = {
    version: COMMIT_FORMAT_VERSION,
    space: fromHex(c.space, 16),
    device,
    seq: c.seq,
    epoch: 0,
    // Commit 1 chains to the zero hash; any later one without `prev` gets a made-up hash.
    prevHash: prev ? await sha256(prev) : new Uint8Array(32).fill(c.seq === 1 ? 0 : 7),
    author: signer.signingPublic,
  };
  const aad = encodeCommitHeader(header);
  const plain = encodeCommitPlaintext({ ...c, at: opts.at ?? c.at + 1 });
  const body = await sealCommit(
    await deriveCommitKey(key, device, 0),
    aad,
    plain,
    opts.randomNonce ? undefined : await deriveNonceKey(key, device, 0),
  );
  const unsigned = unsignedCommit(header, body);
  return appendSignature(unsigned, await signBytes(signer.signingKey, SIGNING_LABELS.commit, unsigned));
}

/** A clinic made on `a`, joined by `v`, with `count` commits of `a` carried to `v` by bundle. */
async function setup(count: number) {
  const a = await device("author");
  const v = await device("victim");
  const space = await a.createSpace({ name: "Ward" });
  await v.join(await a.invite(space, "https://app.example/"));
  for (let i = 1; i <= count; i++)
    await a.patients.insert({ name: `P${i}`, ward: "A", notes: "" }, { space });
  const key = (await a.replica.dexie.table<SpaceRow>("_spaces").get(space.id))!.key;
  const sealed = await (await sealerOf(a, space)).sealedRange(a.deviceId, 1, count);
  const commits = await a.exportCommits({}, { spaces: [space.id] });
  return { a, v, space, key, sealed, commits };
}

async function carry(from: Db, to: Db, space: Space) {
  return to.importBundle(await from.exportBundle({ space, since: await to.vector([space.id]) }));
}

const names = async (db: Db) => (await db.patients.orderBy("name").toArray()).map((p) => p.name).join(",");

async function keptBytes(db: Db, space: Space, device: string, seq: number): Promise<Uint8Array | undefined> {
  return (await db.replica.dexie.table("_sealed").get([space.id, device, seq]))?.bytes;
}

describe("equivocation: a second, different commit for a held (device, seq)", () => {
  it("through a bundle: the first is kept, the forgery reported, and the author's next commit applies", async () => {
    const { a, v, space, key, sealed, commits } = await setup(2);
    await carry(a, v, space);
    const forged = await forge(a.replica.identity!, key, commits[1]!, sealed[0]!);
    const report = await v.importBundle(
      await encodeBundle({ space: space.id, since: { [a.deviceId]: 1 }, commits: [forged] }),
    );
    expect(report.applied).toEqual([]);
    expect(await keptBytes(v, space, a.deviceId, 2)).toEqual(sealed[1]);
    const [entry] = v.integrity.get().entries;
    expect(entry).toMatchObject({
      kind: "equivocation",
      space: space.id,
      device: a.deviceId,
      seq: 2,
      kept: { source: "bundle" },
      refused: { source: "bundle" },
    });
    expect(entry!.kept!.hash).not.toEqual(entry!.refused.hash);

    await a.patients.insert({ name: "P3", ward: "A", notes: "" }, { space });
    const next = await carry(a, v, space);
    expect(next.applied).toHaveLength(1);
    expect(await names(v)).toBe("P1,P2,P3");
    expect(v.integrity.get().entries).toHaveLength(1);
  });

  it("through a peer link: the forged upload is refused, the real next commit is applied", async () => {
    const { a, v, space, key, sealed, commits } = await setup(2);
    await carry(a, v, space);
    const m = await device("member");
    await m.join(await a.invite(space, "https://app.example/"));
    const [cm, cv] = dataChannelPair();
    const errors: unknown[] = [];
    const responder = new PeerResponder({
      space: space.id,
      peer: m.deviceId,
      replica: {
        device: v.deviceId,
        vector: (s) => v.vector(s),
        applyCommits: (c) => v.applyCommits(c),
        exportCommits: (s, o) => v.exportCommits(s, o),
      },
      sealer: await sealerOf(v, space),
      connect: (h) => openDataChannelLink(cv, h),
      hooks: { state: () => {}, error: (e) => errors.push(e) },
    });
    responder.start();
    cleanups.push(() => responder.stop());
    const got: Message[] = [];
    const link = openDataChannelLink(cm, {
      onOpen: () => {},
      onMessage: (f) => got.push(decodeMessage(f)),
      onClose: () => {},
    });
    const acks = async (count: number) => {
      for (let i = 0; i < 1000 && got.filter((x) => x.type === "ack").length < count; i++)
        await new Promise((r) => setTimeout(r, 5));
      expect(got.filter((x) => x.type === "ack")).toHaveLength(count);
    };
    await new Promise((r) => setTimeout(r, 0));
    link.send(
      encodeMessage({ type: "hello", minVersion: 2, maxVersion: 2, device: fromHex(m.deviceId, 16) }),
    );
    const spaceBytes = fromHex(space.id, 16);
    link.send(
      encodeMessage({
        type: "commits",
        space: spaceBytes,
        commits: [await forge(a.replica.identity!, key, commits[1]!, sealed[0]!)],
        more: false,
      }),
    );
    await acks(1);
    expect(await keptBytes(v, space, a.deviceId, 2)).toEqual(sealed[1]);
    expect(v.integrity.get().entries).toMatchObject([
      {
        kind: "equivocation",
        device: a.deviceId,
        seq: 2,
        kept: { source: "bundle" },
        refused: { source: "peer" },
      },
    ]);

    // The author's real next commit, relayed by the member as it may, chains to the kept commit 2.
    await a.patients.insert({ name: "P3", ward: "A", notes: "" }, { space });
    const [third] = await (await sealerOf(a, space)).sealedRange(a.deviceId, 3, 3);
    link.send(encodeMessage({ type: "commits", space: spaceBytes, commits: [third!], more: false }));
    await acks(2);
    expect(await names(v)).toBe("P1,P2,P3");
    expect(errors).toEqual([]);
  });

  it("through the relay connection: an injected forgery is refused and the relay's next commit applies", async () => {
    const relay = await RelayHarness.start();
    const { a, v, space, key, sealed, commits } = await setup(2);
    // Every frame the relay sends `v` goes through here, and the test can add one of its own.
    const deliver = new Map<string, (frame: Uint8Array) => void>();
    const inner = webSocketTransport({ url: relay.url, WebSocket });
    const tapped: Transport = {
      kind: inner.kind,
      label: inner.label,
      connect(s, token, handlers: TransportHandlers, claim) {
        deliver.set(s, (f) => handlers.onMessage(f));
        return inner.connect(s, token, handlers, claim);
      },
    };
    const stopA = a.sync({ transports: [relayTransport(relay.url)], leaderElection: false });
    cleanups.push(stopA);
    const stopV = v.sync({ transports: [tapped], leaderElection: false });
    cleanups.push(stopV);
    await waitFor(
      v.live(() => names(v)),
      (x) => x === "P1,P2",
      20_000,
      "v to get P1,P2 from the relay",
    );
    await waitFor(v.status, (s) => s.state === "synced", 20_000, "v synced");

    deliver.get(space.id)!(
      encodeMessage({
        type: "commits",
        space: fromHex(space.id, 16),
        commits: [await forge(a.replica.identity!, key, commits[1]!, sealed[0]!)],
        more: false,
      }),
    );
    const report = await waitFor(v.integrity, (r) => r.entries.length > 0, 5_000, "an integrity entry").catch(
      (e) => {
        throw new Error(`${e}: ${JSON.stringify(v.status.get())}`);
      },
    );
    expect(report.entries[0]).toMatchObject({
      kind: "equivocation",
      device: a.deviceId,
      seq: 2,
      kept: { source: "relay" },
      refused: { source: "relay" },
    });
    expect(await keptBytes(v, space, a.deviceId, 2)).toEqual(sealed[1]);
    const status = await waitFor(v.status, (s) => (s.flagged ?? []).length > 0, 20_000, "the device flagged");
    expect(status.flagged).toEqual([{ space: space.id, device: a.deviceId, kind: "equivocation", seq: 2 }]);

    await a.patients.insert({ name: "P3", ward: "A", notes: "" }, { space });
    await waitFor(
      v.live(() => names(v)),
      (x) => x === "P1,P2,P3",
      20_000,
      "v to get P3 from the relay",
    );
  });
});

describe("one encoding per commit, and a chain checked late", () => {
  it("refuses a commit sealed with a random nonce, though the key and the tag are right", async () => {
    const { a, v, space, key, commits } = await setup(1);
    const odd = await forge(a.replica.identity!, key, commits[0]!, null, {
      at: commits[0]!.at,
      randomNonce: true,
    });
    const sealer = await sealerOf(v, space);
    await expect(sealer.open(odd)).rejects.toMatchObject({ code: "DecryptError" });
    // The same commit sealed with its synthetic IV opens: only the nonce differs.
    const honest = await forge(a.replica.identity!, key, commits[0]!, null, { at: commits[0]!.at });
    expect((await sealer.open(honest)).commit.id).toBe(commits[0]!.id);
  });

  it("drops a commit kept aside without its predecessor once the predecessor shows it does not follow", async () => {
    const { a, v, space, key, sealed, commits } = await setup(3);
    await v.importBundle(await encodeBundle({ space: space.id, commits: [sealed[0]!] }));
    // Commit 3 with a made-up chain hash arrives before commit 2: it is kept aside unchecked.
    const stray = await forge(a.replica.identity!, key, commits[2]!, null);
    const first = await v.importBundle(
      await encodeBundle({ space: space.id, since: { [a.deviceId]: 2 }, commits: [stray] }),
    );
    expect(first.applied).toEqual([]);
    expect(await v.replica.dexie.table("_pending").count()).toBe(1);
    // The real commits 2 and 3: 2 shows the stray 3 does not follow it, so the real 3 takes its place.
    const second = await v.importBundle(
      await encodeBundle({ space: space.id, since: { [a.deviceId]: 1 }, commits: [sealed[1]!, sealed[2]!] }),
    );
    expect(second.applied).toHaveLength(2);
    expect(await names(v)).toBe("P1,P2,P3");
    expect(await keptBytes(v, space, a.deviceId, 3)).toEqual(sealed[2]);
    expect(await v.replica.dexie.table("_pending").count()).toBe(0);
    expect(v.integrity.get().entries).toMatchObject([{ kind: "broken-chain", device: a.deviceId, seq: 3 }]);
  });
});
