// The hostile fuzzer's machinery, checked on its own (issue 12): the simulated network's bit flips, the
// hostile commits (each opens under the real `SpaceSealer`, so only the replica's own checks stand in
// their way), and the report adapter the hostile invariant reads. These pass before and after the
// fixes of items 1-10; the seeded hostile runs themselves are in hostile-fuzz-{1,2}.test.ts.
import * as A from "@automerge/automerge";
import { afterEach, describe, expect, it } from "vitest";
import { openDatabase } from "../../src/index.ts";
import type { SpaceRow } from "../../src/replica/stored-rows.ts";
import { decodeBundle } from "../../src/bundles/bundle.ts";
import { SpaceSealer } from "../../src/sealing/sealer.ts";
import { seededRandom } from "../../src/testing/seeded-random.ts";
import { SimulatedNetwork } from "../../src/testing/simulated-network.ts";
import type { MemoryServerEnd } from "../../src/transports/memory-transport.ts";
import type { DeviceId, SpaceId } from "../../src/types.ts";
import {
  commitOf,
  deepCommit,
  hugeChange,
  idCreation,
  idRoot,
  sealAs,
  seededDevice,
  seededIdentity,
  canSignAs,
  seededRecord,
  twinOf,
} from "./hostile-commits.ts";
import { readHostileReports, reported, type HostileDb } from "./hostile-reports.ts";

const opened: { close(): Promise<void> }[] = [];
afterEach(async () => {
  for (const db of opened.splice(0)) await db.close();
});

let n = 0;
async function spaceOf() {
  const db = await openDatabase({
    name: `hostile-machinery-${n++}`,
    collections: { patients: { indexes: "id, name" } },
    persist: false,
  });
  opened.push(db);
  const space = (await db.createSpace({ name: "H" })).id;
  const key = (await db.replica.dexie.table<SpaceRow>("_spaces").get(space))!.key;
  return { db, space, key, sealer: new SpaceSealer(db.replica.dexie, space, key) };
}

describe("the simulated network flips bits when asked", () => {
  /** Sends 20 frames each way and resolves once all 40 arrived. */
  async function roundTrip(bitFlip: number | undefined) {
    const toServer: Uint8Array[] = [];
    const toClient: Uint8Array[] = [];
    const sent = Array.from({ length: 20 }, (_, i) => new Uint8Array(32).fill(i));
    let server!: MemoryServerEnd;
    let stats!: SimulatedNetwork["stats"];
    await new Promise<void>((done) => {
      const arrived = () => toServer.length + toClient.length === 40 && done();
      const net = new SimulatedNetwork(
        (_s, _t, end) => {
          server = end;
          end.onMessage = (f) => (toServer.push(f), arrived());
        },
        7,
        { drop: 0, duplicate: 0, maxDelayMs: 0, ...(bitFlip === undefined ? {} : { bitFlip }) },
      );
      stats = net.stats;
      const conn = net.transport("a").connect("00".repeat(16) as SpaceId, new Uint8Array(32), {
        onOpen: () => {
          for (const f of sent) conn.send(f);
          for (const f of sent) server.send(f);
        },
        onMessage: (f) => (toClient.push(f), arrived()),
        onClose: () => {},
      });
    });
    return { sent, toServer, toClient, stats };
  }

  const bitsApart = (a: Uint8Array, b: Uint8Array) =>
    a.reduce((n, x, i) => n + [...(x ^ b[i]!).toString(2)].filter((c) => c === "1").length, 0);

  it("flips exactly one bit per damaged frame, both ways, on a copy", async () => {
    const { sent, toServer, toClient, stats } = await roundTrip(1);
    expect(toServer).toHaveLength(20);
    expect(toClient).toHaveLength(20);
    for (const [i, f] of sent.entries()) {
      expect(f.every((x) => x === i)).toBe(true); // the sender's bytes stay intact
      expect(bitsApart(f, toServer[i]!)).toBe(1);
      expect(bitsApart(f, toClient[i]!)).toBe(1);
    }
    expect(stats.flipped).toBe(40);
  });

  it("delivers frames intact without bitFlip (the CI seeds' networks)", async () => {
    const { sent, toServer, toClient, stats } = await roundTrip(undefined);
    for (const [i, f] of sent.entries()) {
      expect(toServer[i]).toEqual(f);
      expect(toClient[i]).toEqual(f);
    }
    expect(stats.flipped).toBe(0);
  });
});

describe("hostile commits are well sealed, so only the replica's checks can stop them", () => {
  it("a commit of another device signed with the forger's key is refused as SignatureInvalid", async () => {
    const { db, space, key, sealer } = await spaceOf();
    await db.patients.insert({ name: "first" }, { space });
    const [one] = (await decodeBundle(await db.exportBundle({ space }))).commits;
    const original = (await sealer.open(one!)).commit;
    // Another device's id, but no key for it registered: `sealAs` signs with an impostor's key.
    const other = { ...twinOf(original), device: seededDevice(seededRandom(99)) };
    await expect(sealer.open(await sealAs(key, other, null))).rejects.toMatchObject({
      code: "SignatureInvalid",
      reason: "wrong-author",
    });
  });

  const rnd = () => seededRandom(12);

  it("a creation nested 20,000 deep opens under the real sealer, and decodes as over the limits", async () => {
    const { space, key, sealer } = await spaceOf();
    const author = (await seededIdentity(rnd())).device;
    const { commit, plaintext } = deepCommit(space, author, seededRecord(rnd()), 20_000);
    const got = (await sealer.open(await sealAs(key, commit, null, plaintext))).commit;
    expect(got.id).toBe(commit.id);
    // Authentic (it opens), so the receiver quarantines it in its slot; the depth is refused on the
    // bytes, before JSON.parse could overflow the stack.
    expect(got.changes).toEqual([]);
    expect(got.defect?.reason).toBe("limits");
  });

  it("one change setting 40,000 map keys opens, and decodes as one Automerge change", async () => {
    const { space, key, sealer } = await spaceOf();
    const r = rnd();
    const author = (await seededIdentity(r)).device;
    const commit = commitOf(space, author, 1, hugeChange(seededRecord(r), seededDevice(r), 40_000));
    const got = (await sealer.open(await sealAs(key, commit, null))).commit;
    expect(got.changes[0]!.changes).toHaveLength(1);
    expect(A.decodeChange(got.changes[0]!.changes[0]!).ops.length).toBeGreaterThanOrEqual(40_000);
  });

  it("creations and Automerge roots naming another record's id open with that id inside", async () => {
    const { space, key, sealer } = await spaceOf();
    const r = rnd();
    const victim = seededRecord(r);
    const a = commitOf(space, (await seededIdentity(r)).device, 1, idCreation(seededRecord(r), victim));
    const b = commitOf(
      space,
      (await seededIdentity(r)).device,
      1,
      idRoot(seededRecord(r), seededDevice(r), victim),
    );
    expect((await sealer.open(await sealAs(key, a, null))).commit.changes[0]!.create!.json.id).toBe(victim);
    const root = (await sealer.open(await sealAs(key, b, null))).commit.changes[0]!.changes;
    expect(A.applyChanges(A.init<Record<string, unknown>>(), [...root])[0].id).toBe(victim);
  });

  it("a forged twin has the victim's (device, seq), other bytes, and a valid seal and chain", async () => {
    const { db, space, key, sealer } = await spaceOf();
    canSignAs(db.replica.identity!); // the member equivocates as its own device
    await db.patients.insert({ name: "first" }, { space });
    await db.patients.insert({ name: "second" }, { space });
    const [one, two] = (await decodeBundle(await db.exportBundle({ space }))).commits;
    const original = (await sealer.open(two!)).commit;
    const twin = await sealAs(key, twinOf(original), one!);
    expect(twin).not.toEqual(two);
    const got = (await sealer.open(twin, (_d: DeviceId, seq: number) => (seq === 1 ? one : undefined)))
      .commit;
    expect([got.device, got.seq]).toEqual([original.device, original.seq]);
  });
});

describe("the report adapter reads whatever the replica exposes", () => {
  const id = `${"a".repeat(32)}.${"b".repeat(32)}.1`;
  const fake = (extra: { quarantine?: object[]; integrity?: unknown }): HostileDb =>
    ({
      replica: {
        dexie: {
          tables: extra.quarantine ? [{ name: "_quarantine" }] : [],
          table: () => ({ toArray: async () => extra.quarantine }),
        },
      },
      ...(extra.integrity === undefined ? {} : { integrity: extra.integrity }),
    }) as unknown as HostileDb;

  it("reads the quarantine table", async () => {
    const reports = await readHostileReports(fake({ quarantine: [{ commit: id, code: "TooDeep" }] }), []);
    expect(reported(reports, { kind: "quarantine", commit: id })).toBe(true);
    expect(reported(reports, { kind: "quarantine", commit: id.replace(/1$/, "2") })).toBe(false);
  });

  it("reads db.integrity as a value store of entries", async () => {
    const integrity = {
      get: () => ({ entries: [{ kind: "equivocation", device: "b".repeat(32), seq: 3 }] }),
    };
    const reports = await readHostileReports(fake({ integrity }), []);
    expect(reported(reports, { kind: "equivocation", device: "b".repeat(32), seq: 3 })).toBe(true);
    expect(reported(reports, { kind: "snapshot" })).toBe(false);
  });

  it("falls back to the errors the status reported", async () => {
    const errors = [
      { code: "ValidationError", message: `Malformed commit ${id}: bad creation.` },
      { code: "SnapshotError", message: "The relay's snapshot contradicts the sealed commits." },
      { code: "SyncError", message: "Some other failure." },
    ];
    const reports = await readHostileReports(fake({}), errors);
    expect(reported(reports, { kind: "quarantine", commit: id })).toBe(true);
    expect(reported(reports, { kind: "snapshot" })).toBe(true);
    expect(reports).toHaveLength(2);
  });
});
