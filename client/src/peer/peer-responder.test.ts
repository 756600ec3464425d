// A SpaceSession (client side) and a PeerResponder (answering from its replica) over an in-memory
// data-channel pair: both-way sync with live push, a concurrent edit merged, and a peer treated as
// untrusted as the relay (altered commits refused, a hello naming another device refused).
import { afterEach, describe, expect, it } from "vitest";
import { openDatabase, type Database, type Space } from "../index.ts";
import { decodeMessage, encodeMessage, fromHex, type Message } from "../protocol/index.ts";
import type { SpaceRow } from "../replica/stored-rows.ts";
import { dataChannelPair } from "../transports/data-channel-pair.ts";
import { openDataChannelLink, webRtcTransport } from "../transports/webrtc-transport.ts";
import type { ShoalError } from "../errors.ts";
import { PeerResponder } from "./peer-responder.ts";
import { SpaceSealer } from "../sealing/sealer.ts";
import { SpaceSession } from "../sync/space-session.ts";

type P = { name: string; notes: string };
type Db = Database<{ patients: P }>;
const collections = { patients: { indexes: "id, name", text: ["notes"] } };
let n = 0;
const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

async function device(): Promise<Db> {
  const db = await openDatabase<{ patients: P }>({
    name: `peer-${n++}-${Math.random()}`,
    collections,
    persist: false,
  });
  cleanup.push(() => db.close());
  return db;
}

async function sealerOf(db: Db, space: Space): Promise<SpaceSealer> {
  const row = (await db.replica.dexie.table<SpaceRow>("_spaces").get(space.id))!;
  return new SpaceSealer(db.replica.dexie, space.id, row.key);
}

/** B's responder for A in `space`, answering on B's end `end` of a data channel pair. */
async function responderFor(
  b: Db,
  a: Db,
  space: Space,
  end: Parameters<typeof openDataChannelLink>[0],
  error: (e: ShoalError) => void,
): Promise<PeerResponder> {
  return new PeerResponder({
    space: space.id,
    peer: a.deviceId,
    replica: {
      device: b.deviceId,
      vector: (s) => b.vector(s),
      applyCommits: (c) => b.applyCommits(c),
      exportCommits: (s, o) => b.exportCommits(s, o),
    },
    sealer: await sealerOf(b, space),
    connect: (h) => openDataChannelLink(end, h),
    hooks: { state: () => {}, error },
  });
}

/** Resolves once `test` holds, checking on every change of `db` (bounded). */
function until(db: Db, test: () => Promise<boolean>, what: string, ms = 15_000): Promise<void> {
  return new Promise((resolve, reject) => {
    let done = false;
    const timer = setTimeout(() => {
      done = true;
      sub.unsubscribe();
      reject(new Error(`timed out waiting for ${what}`));
    }, ms);
    const sub = db
      .live(() => db.vector())
      .subscribe(() => {
        void test().then((ok) => {
          if (!ok || done) return;
          done = true;
          clearTimeout(timer);
          sub.unsubscribe();
          resolve();
        });
      });
  });
}

/** Device `a` runs a session over one end, `b` a responder over the other; both follow local changes. */
async function link(a: Db, b: Db, space: Space) {
  const [ca, cb] = dataChannelPair();
  const errors: ShoalError[] = [];
  const rowA = (await a.replica.dexie.table<SpaceRow>("_spaces").get(space.id))!;
  const session = new SpaceSession({
    space: space.id,
    replica: {
      device: a.deviceId,
      vector: (s) => a.vector(s),
      applyCommits: (c) => a.applyCommits(c),
      recordAcks: async () => {},
      readSnapshot: () => Promise.reject(new Error("no snapshots over peers")),
      importSnapshot: () => Promise.reject(new Error("no snapshots over peers")),
    },
    sealer: await sealerOf(a, space),
    transport: webRtcTransport({ channel: ca, peer: b.deviceId }),
    token: new Uint8Array(0),
    spaceKey: rowA.key,
    snapshots: { bootstrap: false, publishEvery: 0 },
    hooks: { state: () => {}, error: (e) => errors.push(e), synced: () => {}, acked: () => {} },
  });
  const responder = await responderFor(b, a, space, cb, (e) => errors.push(e));
  const subs = [
    a.live(() => a.vector()).subscribe(() => session.poke()),
    b.live(() => b.vector()).subscribe(() => responder.poke()),
  ];
  responder.start();
  session.start();
  cleanup.push(() => {
    subs.forEach((s) => s.unsubscribe());
    session.stop();
    responder.stop();
  });
  return { session, responder, errors, ca, cb };
}

const names = async (db: Db) => (await db.patients.orderBy("name").toArray()).map((p) => p.name).join(",");

describe("peer responder over a data channel", () => {
  it("syncs both ways, pushes new commits live, and merges a concurrent edit of one note", async () => {
    const a = await device();
    const b = await device();
    const space = await a.createSpace({ name: "Ward" });
    await b.join(await a.invite(space, "https://app.example/"));
    const ada = await a.patients.insert({ name: "Ada", notes: "Fever." }, { space });
    await b.patients.insert({ name: "Bea", notes: "" }, { space });

    const { responder, errors } = await link(a, b, space);
    await until(a, async () => (await names(a)) === "Ada,Bea", "a to get Bea");
    await until(b, async () => (await names(b)) === "Ada,Bea", "b to get Ada");

    // b's new commit reaches a only by live push (a's session already caught up).
    await b.patients.insert({ name: "Cy", notes: "" }, { space });
    await until(a, async () => (await names(a)) === "Ada,Bea,Cy", "live push to a");
    await a.patients.insert({ name: "Di", notes: "" }, { space });
    await until(b, async () => (await names(b)) === "Ada,Bea,Cy,Di", "upload to b");

    // Both edit Ada's note at once: both insertions survive, identically on both sides.
    await Promise.all([
      a.patients.update(ada, (p) => void (p.notes = "Seen at 9. " + p.notes)),
      b.patients.update(ada, (p) => void (p.notes = p.notes + " Paracetamol.")),
    ]);
    const merged = "Seen at 9. Fever. Paracetamol.";
    await until(a, async () => (await a.patients.get(ada))?.notes === merged, "merge on a");
    await until(b, async () => (await b.patients.get(ada))?.notes === merged, "merge on b");
    expect(await a.vector([space.id])).toEqual(await b.vector([space.id]));
    expect(errors).toEqual([]);
    const t = responder.traffic;
    expect(t.commitsSent).toBeGreaterThanOrEqual(3); // Bea, Cy, b's edit
    expect(t.commitsReceived).toBeGreaterThanOrEqual(3); // Ada, Di, a's edit
  });

  it("refuses an altered commit like the relay path does, applies the others, and acks only what it holds", async () => {
    const a = await device();
    const b = await device();
    const space = await a.createSpace({ name: "Ward" });
    await b.join(await a.invite(space, "https://app.example/"));
    await a.patients.insert({ name: "Ada", notes: "" }, { space });
    await a.patients.insert({ name: "Al", notes: "" }, { space });
    const [good1, good2] = await (await sealerOf(a, space)).sealedRange(a.deviceId, 1, 2);
    const bad = good2!.slice();
    bad[bad.length - 1]! ^= 1; // one bit of the signature

    const [ca, cb] = dataChannelPair();
    const errors: ShoalError[] = [];
    const responder = await responderFor(b, a, space, cb, (e) => errors.push(e));
    responder.start();
    cleanup.push(() => responder.stop());
    const got: Message[] = [];
    let closed = false;
    const client = openDataChannelLink(ca, {
      onOpen: () => {},
      onMessage: (f) => got.push(decodeMessage(f)),
      onClose: () => (closed = true),
    });
    const wait = async (pred: () => boolean, what: string) => {
      for (let i = 0; i < 500 && !pred(); i++) await new Promise((r) => setTimeout(r, 10));
      if (!pred()) throw new Error(`timed out waiting for ${what}`);
    };
    await new Promise((r) => setTimeout(r, 0));
    client.send(
      encodeMessage({ type: "hello", minVersion: 2, maxVersion: 2, device: fromHex(a.deviceId, 16) }),
    );
    await wait(() => got.length === 1, "welcome");
    expect(got[0]).toEqual({ type: "welcome", version: 2, vector: [] });
    const spaceBytes = fromHex(space.id, 16);
    client.send(encodeMessage({ type: "commits", space: spaceBytes, commits: [good1!, bad], more: false }));
    await wait(() => got.length === 3, "ack and error");
    expect(got[1]).toEqual({
      type: "ack",
      space: spaceBytes,
      entries: [{ device: fromHex(a.deviceId, 16), seq: 1 }],
    });
    expect(got[2]).toMatchObject({ type: "error", code: "protocol", fatal: false });
    expect(errors.map((e) => e.code)).toEqual(["SignatureInvalid"]);
    expect(await b.vector([space.id])).toEqual({ [space.id]: { [a.deviceId]: 1 } });
    expect(closed).toBe(false);
  });

  it("refuses a hello from another device than the one signalled, and closes the link", async () => {
    const a = await device();
    const b = await device();
    const space = await a.createSpace({ name: "Ward" });
    await b.join(await a.invite(space, "https://app.example/"));
    const [ca, cb] = dataChannelPair();
    const responder = await responderFor(b, a, space, cb, () => {});
    responder.start();
    cleanup.push(() => responder.stop());
    const got: Message[] = [];
    let closed = false;
    const client = openDataChannelLink(ca, {
      onOpen: () => {},
      onMessage: (f) => got.push(decodeMessage(f)),
      onClose: () => (closed = true),
    });
    await new Promise((r) => setTimeout(r, 0));
    client.send(
      encodeMessage({ type: "hello", minVersion: 2, maxVersion: 2, device: fromHex("ff".repeat(16), 16) }),
    );
    for (let i = 0; i < 500 && !closed; i++) await new Promise((r) => setTimeout(r, 10));
    expect(closed).toBe(true);
    expect(got[0]).toMatchObject({ type: "error", code: "unauthorized", fatal: true });
  });
});
