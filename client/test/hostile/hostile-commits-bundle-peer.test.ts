// Issue 12, items 1 and 2 through a bundle file and through a peer link: hostile commits of a member
// (sealed with the space key, chained like its honest ones) are quarantined one by one; the rest of
// the bundle, the link and the victim's own data are untouched, and each refusal is reported once.
import { afterEach, describe, expect, it } from "vitest";
import { openDatabase, type Database, type Space } from "../../src/index.ts";
import type { CommitQuarantined, ShoalError } from "../../src/errors.ts";
import type { SpaceRow } from "../../src/replica/stored-rows.ts";
import { PeerResponder } from "../../src/peer/peer-responder.ts";
import { SpaceSealer } from "../../src/sealing/sealer.ts";
import { SpaceSession } from "../../src/sync/space-session.ts";
import { dataChannelPair } from "../../src/transports/data-channel-pair.ts";
import { openDataChannelLink, webRtcTransport } from "../../src/transports/webrtc-transport.ts";
import { waitFor } from "../wait-for.ts";
import { deepCreation, forgeCommits, forgedPlaintext, manyKeysChange } from "./forge.ts";

type P = { name: string; ward: string; notes: string };
type Db = Database<{ patients: P }>;
const collections = { patients: { indexes: "id, name, ward", text: ["notes"] } };
let n = 0;
const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

async function device(label: string): Promise<Db> {
  const db = await openDatabase<{ patients: P }>({
    name: `hostile-${label}-${process.pid}-${n++}`,
    collections,
    persist: false,
  });
  cleanup.push(() => db.close());
  return db;
}

/** The victim with a private row, Mallory and Carol in a shared space. */
async function clinic() {
  const [victim, mallory, carol] = await Promise.all([device("victim"), device("mallory"), device("carol")]);
  const space = await victim.createSpace({ name: "Shared ward" });
  const link = await victim.invite(space, "https://app.example/");
  await mallory.join(link);
  await carol.join(link);
  const privateId = await victim.patients.insert({ name: "Private", ward: "P", notes: "mine" });
  return { victim, mallory, carol, space, privateId };
}

/** Mallory's commits: honest, then hostile ones, then honest again. */
async function malloryWrites(mallory: Db, victimPrivateId: string, space: Space): Promise<void> {
  await mallory.patients.insert({ name: "Mallory first", ward: "S", notes: "" }, { space });
  // Seal the first honest one now, so the forged ones chain to it as Mallory's sync would.
  const row = (await mallory.replica.dexie.table<SpaceRow>("_spaces").get(space.id))!;
  await new SpaceSealer(mallory.replica.dexie, space.id, row.key).sealedRange(mallory.deviceId, 1, 1);
  await forgeCommits(mallory, space.id, [
    forgedPlaintext([{ createJson: deepCreation(20_000) }]),
    forgedPlaintext([
      { createJson: `[{"id":"${victimPrivateId}","name":"pwned","notes":"","ward":"P"},["notes"],[]]` },
    ]),
    forgedPlaintext([{ changes: [manyKeysChange(40_000)], paths: ["k0"] }]),
  ]);
  await mallory.patients.insert({ name: "Mallory after", ward: "S", notes: "" }, { space });
}

async function expectIntact(victim: Db, privateId: string): Promise<void> {
  expect(await victim.patients.get(privateId)).toMatchObject({ name: "Private", ward: "P", notes: "mine" });
  expect(await victim.patients.where("name").anyOf(["pwned", "deep"]).count()).toBe(0);
}

describe("hostile commits through a bundle and a peer link", () => {
  it("a bundle with hostile commits and one that IndexedDB cannot store imports everything else", async () => {
    const { victim, mallory, carol, space, privateId } = await clinic();
    await malloryWrites(mallory, privateId, space);
    await mallory.patients.insert({ name: "clone-bomb", ward: "S", notes: "" }, { space });
    await mallory.patients.insert({ name: "Mallory last", ward: "S", notes: "" }, { space });
    // The victim's storage cannot clone one row (as a browser cannot clone a too-deep value): the chunk
    // fails whole, and the commit that caused it must be found and quarantined alone.
    const table = victim.replica.dexie.table("patients");
    const bulkPut = table.bulkPut.bind(table);
    table.bulkPut = ((rows: P[], ...rest: unknown[]) => {
      if (rows.some((r) => r.name === "clone-bomb"))
        return Promise.reject(new DOMException("could not be cloned", "DataCloneError"));
      return (bulkPut as (...a: unknown[]) => Promise<unknown>)(rows, ...rest);
    }) as typeof table.bulkPut;

    const report = await victim.importBundle(await mallory.exportBundle({ space }));
    expect(report.rejected.map((r) => [r.error.code, (r.error as CommitQuarantined).reason])).toEqual([
      ["CommitQuarantined", "limits"],
      ["CommitQuarantined", "reserved"],
      ["CommitQuarantined", "limits"],
      ["CommitQuarantined", "storage"],
    ]);
    expect(report.applied.length).toBe(3);
    const names = (await victim.patients.where("ward").equals("S").toArray()).map((p) => p.name).sort();
    expect(names).toEqual(["Mallory after", "Mallory first", "Mallory last"]);
    await expectIntact(victim, privateId);
    expect((await victim.quarantine()).map((q) => [q.seq, q.from])).toEqual([
      [2, "bundle"],
      [3, "bundle"],
      [4, "bundle"],
      [6, "bundle"],
    ]);
    // Mallory's slots count as held; importing the file again reports nothing new.
    expect((await victim.vector([space.id]))[space.id]![mallory.deviceId]).toBe(7);
    const again = await victim.importBundle(await mallory.exportBundle({ space }));
    expect(again.rejected).toEqual([]);
    // Other devices' bundles still apply.
    await carol.patients.insert({ name: "Carol", ward: "S", notes: "" }, { space });
    await victim.importBundle(await carol.exportBundle({ space }));
    expect(await victim.patients.where("name").equals("Carol").count()).toBe(1);
  });

  it("hostile commits pulled from a peer are quarantined once each and the link goes on", async () => {
    const { victim, mallory, space, privateId } = await clinic();
    await malloryWrites(mallory, privateId, space);
    // The victim's session pulls from Mallory's responder over an in-memory data channel pair.
    const [cv, cm] = dataChannelPair();
    const errors: ShoalError[] = [];
    const key = (db: Db) => db.replica.dexie.table<SpaceRow>("_spaces").get(space.id);
    const session = new SpaceSession({
      space: space.id,
      replica: {
        device: victim.deviceId,
        vector: (s) => victim.vector(s),
        applyCommits: (c) => victim.applyCommits(c, "peer"),
        recordAcks: async () => {},
        readSnapshot: () => Promise.reject(new Error("no snapshots over peers")),
        importSnapshot: () => Promise.reject(new Error("no snapshots over peers")),
      },
      sealer: new SpaceSealer(victim.replica.dexie, space.id, (await key(victim))!.key),
      transport: webRtcTransport({ channel: cv, peer: mallory.deviceId }),
      token: new Uint8Array(0),
      spaceKey: (await key(victim))!.key,
      snapshots: { bootstrap: false, publishEvery: 0 },
      hooks: { state: () => {}, error: (e) => errors.push(e), synced: () => {}, acked: () => {} },
    });
    const responder = new PeerResponder({
      space: space.id,
      peer: victim.deviceId,
      replica: {
        device: mallory.deviceId,
        vector: (s) => mallory.vector(s),
        applyCommits: (c) => mallory.applyCommits(c),
        exportCommits: (s, o) => mallory.exportCommits(s, o),
      },
      sealer: new SpaceSealer(mallory.replica.dexie, space.id, (await key(mallory))!.key),
      connect: (h) => openDataChannelLink(cm, h),
      hooks: { state: () => {}, error: () => {} },
    });
    const sub = mallory.live(() => mallory.vector()).subscribe(() => responder.poke());
    responder.start();
    session.start();
    cleanup.push(() => {
      sub.unsubscribe();
      session.stop();
      responder.stop();
    });
    const rows = victim.patients.live((c) => c.where("ward").equals("S").toArray());
    await waitFor(rows, (r) => r.length === 2, 20_000, "the victim to receive Mallory's honest commits");
    // The link is alive: a later commit of Mallory is pushed and applied.
    await mallory.patients.insert({ name: "Mallory later", ward: "S", notes: "" }, { space });
    await waitFor(rows, (r) => r.length === 3, 20_000, "a later commit over the same link");
    await expectIntact(victim, privateId);
    const quarantined = errors.filter((e) => e.code === "CommitQuarantined") as CommitQuarantined[];
    expect(quarantined.map((e) => e.reason)).toEqual(["limits", "reserved", "limits"]);
    expect((await victim.quarantine()).map((q) => q.from)).toEqual(["peer", "peer", "peer"]);
  });
});
