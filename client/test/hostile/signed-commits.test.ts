// Issue 13, item 2: every commit is signed by its device, and a device id is the hash of its signing key,
// so a member holding the space key can no longer write as another device. Through the sealer, a bundle
// file, a peer link and a real relay process: a commit whose signature does not verify, or whose author
// key is not its device's, is refused with `SignatureInvalid` (the relay: `signature`), alone, and the
// receiver goes on. Also: the keys themselves (kept across reopen, one identity per database even when
// two tabs create it at once, none without WebCrypto).
import { afterEach, describe, expect, it } from "vitest";
import { openDatabase, type Database, type ShoalError } from "../../src/index.ts";
import { InvalidBundle } from "../../src/errors.ts";
import { deviceIdOf } from "../../src/identity/device-identity.ts";
import { decodeBundle, encodeBundle } from "../../src/bundles/bundle.ts";
import { decodeBase64Url, decodeSealedCommit, fromHex, toHex } from "../../src/protocol/index.ts";
import { deriveRelayToken } from "../../src/crypto/keys.ts";
import { connectReady } from "../../../sync-server/test/ws-client.ts";
import type { SpaceRow } from "../../src/replica/stored-rows.ts";
import { encodeCommitPlaintext } from "../../src/sealing/commit-codec.ts";
import { SpaceSealer } from "../../src/sealing/sealer.ts";
import { RelayHarness, disposeAllRelays, relayAcknowledged, relayTransport } from "../relay-harness.ts";
import { sealAs } from "../seal-as.ts";
import { waitFor } from "../wait-for.ts";

type P = { name: string; ward: string; notes: string };
type Db = Database<{ patients: P }>;
const collections = { patients: { indexes: "id, name, ward", text: ["notes"] } };
let n = 0;
const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
  await disposeAllRelays();
});

async function device(label: string, name = `signed-${label}-${process.pid}-${n++}`): Promise<Db> {
  const db = await openDatabase<{ patients: P }>({ name, collections, persist: false });
  cleanup.push(() => db.close());
  return db;
}

/** Author and Mallory in one space; the author's two commits, sealed; the space key. */
async function clinic() {
  const [author, mallory, victim] = await Promise.all([
    device("author"),
    device("mallory"),
    device("victim"),
  ]);
  const space = await author.createSpace({ name: "Ward" });
  const link = await author.invite(space, "https://app.example/");
  await mallory.join(link);
  await victim.join(link);
  await author.patients.insert({ name: "One", ward: "A", notes: "" }, { space });
  await author.patients.insert({ name: "Two", ward: "A", notes: "" }, { space });
  // Mallory is a member: it holds the key and, from the link, the space's claim.
  const { key, claim } = (await mallory.replica.dexie.table<SpaceRow>("_spaces").get(space.id))!;
  const sealed = (await decodeBundle(await author.exportBundle({ space }))).commits;
  const commits = await author.exportCommits({}, { spaces: [space.id] });
  return { author, mallory, victim, space, key, claim, sealed, commits };
}

/** Commit `seq` of the author rewritten and signed by Mallory: the author's device id, Mallory's key. */
async function asAuthor(c: Awaited<ReturnType<typeof clinic>>, seq: number, name: string) {
  const commit = c.commits[seq - 1]!;
  const changed = {
    ...commit,
    changes: commit.changes.map((rc) =>
      rc.create ? { ...rc, create: { ...rc.create, json: { ...rc.create.json, name } } } : rc,
    ),
  };
  const prevHash = seq === 1 ? new Uint8Array(32) : decodeSealedCommit(c.sealed[seq - 1]!).header.prevHash;
  const device = fromHex(c.author.deviceId, 16);
  return sealAs(
    c.mallory.replica.identity!,
    c.key,
    { space: fromHex(c.space.id, 16), seq, prevHash },
    encodeCommitPlaintext(changed),
    (h) => ({ ...h, device }),
  );
}

/** The author's commit `seq` with one bit of its signature flipped. */
function flipped(sealed: Uint8Array): Uint8Array {
  const bad = sealed.slice();
  bad[bad.length - 1]! ^= 0x40;
  return bad;
}

const names = async (db: Db) => (await db.patients.orderBy("name").toArray()).map((p) => p.name).join(",");

describe("device keys", () => {
  it("are made once per database, kept across reopen, and name the device", async () => {
    const name = `signed-keys-${process.pid}-${n++}`;
    const first = await openDatabase<{ patients: P }>({ name, collections });
    const identity = first.replica.identity!;
    expect(identity).toBeDefined();
    expect(first.deviceId).toBe(identity.device);
    expect(first.deviceId).toBe(await deviceIdOf(identity.signingPublic));
    expect(identity.signingKey.extractable).toBe(false);
    await first.close();
    const again = await openDatabase<{ patients: P }>({ name, collections });
    cleanup.push(() => again.close());
    expect(again.deviceId).toBe(first.deviceId);
    expect(again.replica.identity!.signingPublic).toEqual(identity.signingPublic);
  });

  it("two tabs creating the same database at once end with one identity", async () => {
    const name = `signed-tabs-${process.pid}-${n++}`;
    const [a, b] = await Promise.all([
      openDatabase<{ patients: P }>({ name, collections }),
      openDatabase<{ patients: P }>({ name, collections }),
    ]);
    cleanup.push(
      () => a.close(),
      () => b.close(),
    );
    expect(a.deviceId).toBe(b.deviceId);
    expect(a.replica.identity!.signingPublic).toEqual(b.replica.identity!.signingPublic);
  });

  it("a database without keys (made without WebCrypto, or before signed commits) works but cannot sync", async () => {
    const name = `signed-unsigned-${process.pid}-${n++}`;
    const made = await openDatabase<{ patients: P }>({ name, collections });
    await made.replica.dexie.table("_meta").delete("identity");
    await made.close();
    const db = await openDatabase<{ patients: P }>({ name, collections });
    cleanup.push(() => db.close());
    expect(db.replica.identity).toBeUndefined();
    await db.patients.insert({ name: "Local", ward: "A", notes: "" });
    expect(await names(db)).toBe("Local");
    expect(() => db.sync({ relay: "ws://127.0.0.1:9" })).toThrow(
      expect.objectContaining({ code: "UnsignedDevice" }),
    );
  });
});

describe("a commit not signed by its device", () => {
  it("is refused by the sealer as wrong-author or bad-signature, and the real one opens", async () => {
    const c = await clinic();
    const sealer = new SpaceSealer(c.victim.replica.dexie, c.space.id, c.key);
    await expect(sealer.open(await asAuthor(c, 1, "Forged"))).rejects.toMatchObject({
      code: "SignatureInvalid",
      reason: "wrong-author",
      device: c.author.deviceId,
      seq: 1,
    });
    await expect(sealer.open(flipped(c.sealed[0]!))).rejects.toMatchObject({
      code: "SignatureInvalid",
      reason: "bad-signature",
    });
    // Mallory's key with Mallory's own device id but another author key in the header: refused too.
    const wrongKey = await sealAs(
      c.mallory.replica.identity!,
      c.key,
      { space: fromHex(c.space.id, 16), seq: 1, prevHash: new Uint8Array(32) },
      encodeCommitPlaintext({
        ...c.commits[0]!,
        device: c.mallory.deviceId,
        id: `${c.space.id}.${c.mallory.deviceId}.1` as never,
      }),
      (h) => ({ ...h, author: c.author.replica.identity!.signingPublic }),
    );
    await expect(sealer.open(wrongKey)).rejects.toMatchObject({ code: "SignatureInvalid" });
    expect((await sealer.open(c.sealed[0]!)).commit.id).toBe(c.commits[0]!.id);
  });

  it("in a bundle file: the file is refused whole (InvalidBundle, caused by SignatureInvalid), nothing applied, and the real file imports", async () => {
    const c = await clinic();
    for (const bad of [await asAuthor(c, 2, "Forged"), flipped(c.sealed[1]!)]) {
      const file = await encodeBundle({ space: c.space.id, commits: [c.sealed[0]!, bad] });
      const err = await c.victim.importBundle(file).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(InvalidBundle);
      expect((err as InvalidBundle).reason).toBe("unopenable");
      expect(((err as InvalidBundle).cause as ShoalError).code).toBe("SignatureInvalid");
      expect(await names(c.victim)).toBe("");
    }
    await c.victim.importBundle(await c.author.exportBundle({ space: c.space }));
    expect(await names(c.victim)).toBe("One,Two");
  });

  it("through a real relay process: refused with `signature`, stored nowhere; the author's real commits reach the victim", async () => {
    const relay = await RelayHarness.start(["--quiet"]);
    const c = await clinic();
    // Mallory uploads its forgery of the author's commit 1 first, as a raw member of the space.
    const forged = await asAuthor(c, 1, "Forged");
    const token = decodeBase64Url(await deriveRelayToken(c.key, fromHex(c.space.id, 16)));
    const raw = await connectReady(relay.url.replace(/^http/, "ws"), c.space.id, token, c.mallory.deviceId, {
      claim: c.claim!,
    });
    cleanup.push(() => raw.close());
    const from = raw.frames.length;
    raw.send({ type: "commits", space: fromHex(c.space.id, 16), commits: [forged], more: false });
    const refusal = await raw.next("error", from);
    expect(refusal).toMatchObject({ code: "signature", fatal: false, seq: 1 });
    expect(toHex(refusal.device!)).toBe(c.author.deviceId);
    const stopA = c.author.sync({ transports: [relayTransport(relay.url)], leaderElection: false });
    cleanup.push(stopA);
    await relayAcknowledged(c.author, c.space.id);
    const stopV = c.victim.sync({ transports: [relayTransport(relay.url)], leaderElection: false });
    cleanup.push(stopV);
    await waitFor(
      c.victim.live(() => names(c.victim)),
      (x) => x === "One,Two",
      20_000,
      "the victim to get One and Two",
    );
  });
});

describe("history says whose signature proves a commit", () => {
  it("verified for commits made here or received signed; not for plaintext handed to applyCommits", async () => {
    const c = await clinic();
    const [id] = (await c.author.patients.orderBy("name").toArray()).map((p) => p.id);
    await c.victim.importBundle(await c.author.exportBundle({ space: c.space }));
    const plain = await device("plain");
    await plain.join(await c.author.invite(c.space, "https://app.example/"));
    await plain.applyCommits(c.commits);
    await c.victim.patients.update(id!, (p) => void (p.notes = "seen"));
    const verified = async (db: Db) => (await db.patients.history(id!)).map((h) => [h.device, h.verified]);
    expect(await verified(c.author)).toEqual([[c.author.deviceId, true]]);
    expect(await verified(c.victim)).toEqual([
      [c.author.deviceId, true],
      [c.victim.deviceId, true],
    ]);
    expect(await verified(plain)).toEqual([[c.author.deviceId, false]]);
  });
});
