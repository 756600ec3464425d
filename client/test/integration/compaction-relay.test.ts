// Issue 16, item 3, through a real relay process with the SQLite store: an admin erases a record and
// compacts the space (`db.compact`); the relay drops the commits below the compaction's vector, so the
// sealed commits that carried the erased record are in no file of its data directory (WAL included);
// the erasure shows `relayCompacted`; devices drop their sealed copies; a new member bootstraps from
// the compacted snapshot plus the tail and converges without the record; relay bytes go down.
import { afterEach, describe, expect, it } from "vitest";
import type { Database, ErasureStatus, SpaceId } from "../../src/index.ts";
import type { StoredCommit } from "../../src/replica/commit.ts";
import { verifyAudit } from "../../src/audit/verify-audit.ts";
import { waitFor } from "../wait-for.ts";
import { patientNamed as named, storeBytes } from "../compaction-waits.ts";
import {
  closeAllDevices,
  disposeAllRelays,
  openDevice,
  patientCollections,
  RelayHarness,
  relayAcknowledged,
  type Patient,
} from "../relay-harness.ts";
import Sqlite from "better-sqlite3";

type Db = Database<{ patients: Patient }>;
const device = (label: string) => openDevice<{ patients: Patient }>(label, patientCollections);
const CANARY = "canary-compaction-7f3a91";

afterEach(async () => {
  await closeAllDevices();
  await disposeAllRelays();
});

/** The sealed bytes the relay's SQLite file holds for one device of a space, by seq (read-only). */
function relayCommits(file: string, space: SpaceId, device: string): Map<number, Buffer> {
  const db = new Sqlite(file, { readonly: true, fileMustExist: true });
  try {
    const rows = db
      .prepare("SELECT seq, bytes FROM commits WHERE space = ? AND device = ? ORDER BY seq")
      .all(space, device) as { seq: number; bytes: Buffer }[];
    return new Map(rows.map((r) => [r.seq, r.bytes]));
  } finally {
    db.close();
  }
}

/** The seqs of `db`'s own commits in its log that touched record `id`. */
async function seqsTouching(db: Db, id: string): Promise<number[]> {
  const rows = await db.replica.dexie.table<StoredCommit>("_commits").where("records").equals(id).toArray();
  return rows.filter((c) => c.device === db.deviceId).map((c) => c.seq);
}

/** Whether any file of the relay's data directory holds `needle`. */
function inRelayFiles(relay: RelayHarness, needle: Buffer): string[] {
  return relay
    .dataFiles()
    .filter((f) => f.bytes.includes(needle))
    .map((f) => f.name);
}

describe("relay compaction", () => {
  it("drops the erased record's sealed commits from every relay file, and a new member bootstraps without it", async () => {
    const relay = await RelayHarness.start();
    const [a, b] = await Promise.all([device("admin"), device("b")]);
    for (const x of [a, b]) x.online(relay.url);
    const space = await a.db.createSpace({ name: "North Clinic" });
    const toB = await a.db.invite(space, { role: "writer", me: "Dr. Admin" });
    await relayAcknowledged(a.db, space.id);
    await b.db.join(toB, { name: "Nurse B", relay: relay.url });
    const erin = await b.db.patients.insert({ name: "Erin", ward: "A", notes: CANARY }, { space });
    for (let k = 0; k < 3; k++) await b.db.patients.update(erin, (p) => void (p.notes += ` ${CANARY}-${k}`));
    const keepers: string[] = [];
    for (let i = 0; i < 20; i++)
      keepers.push(await b.db.patients.insert({ name: `Keeper ${i}`, ward: "A", notes: `k${i}` }, { space }));
    for (let k = 0; k < 5; k++)
      for (const id of keepers) await b.db.patients.update(id, (p) => void (p.notes += "."));
    await relayAcknowledged(b.db, space.id);
    await named(a.db, "Keeper 19");

    // The ciphertext of every commit that carried Erin, as the relay stored it.
    const erinSeqs = await seqsTouching(b.db, erin);
    expect(erinSeqs.length).toBe(4);
    const stored = relayCommits(relay.sqliteFile, space.id, b.db.deviceId);
    const erinCipher = erinSeqs.map((s) => stored.get(s)!.subarray(120, 184));
    for (const c of erinCipher) expect(inRelayFiles(relay, c).length).toBeGreaterThan(0);

    await a.db.patients.erase(erin);
    const receipts = await waitFor(
      a.db.erasure(erin),
      (e: ErasureStatus) => e.erased === 2,
      30_000,
      "2 receipts",
    );
    expect(receipts.relayCompacted).toBe(false);
    await relayAcknowledged(b.db, space.id);
    const before = await storeBytes(relay);

    const compaction = await a.db.compact(space);
    expect(compaction.vector[b.db.deviceId]).toBeGreaterThanOrEqual(Math.max(...erinSeqs));
    // The waiting costs the log one request naming every device, and one receipt from the other member.
    const ops = (await a.db.replica.dexie.table<{ op: string }>("_members").toArray()).map(
      (r) =>
        JSON.parse(r.op) as { author: string; action: { kind: string; vector?: Record<string, number> } },
    );
    const requests = ops.filter((o) => o.action.kind === "hold-request");
    expect(requests.map((o) => [o.author, o.action.vector])).toEqual([[a.db.deviceId, compaction.vector]]);
    const holds = ops.filter((o) => o.action.kind === "hold");
    expect(holds.map((o) => [o.author, Object.keys(o.action.vector ?? {})])).toEqual([
      [b.db.deviceId, [a.db.deviceId]],
    ]);
    await relayAcknowledged(a.db, space.id);
    const after = await storeBytes(relay);
    expect(after).toBeLessThan(before);

    // Nothing of Erin in any relay file: neither the plaintext nor the ciphertext of her commits.
    expect(inRelayFiles(relay, Buffer.from(CANARY))).toEqual([]);
    for (const c of erinCipher) expect(inRelayFiles(relay, c)).toEqual([]);
    // Both devices apply the compaction: the erasure shows it, and their sealed copies are gone.
    for (const x of [a, b])
      await waitFor(x.db.erasure(erin), (e: ErasureStatus) => e.relayCompacted, 30_000, "relayCompacted");
    const kept = await b.db.replica.dexie
      .table<{ seq: number; bytes: Uint8Array }>("_sealed")
      .where("[space+device+seq]")
      .between([space.id, b.db.deviceId, 0], [space.id, b.db.deviceId, Math.max(...erinSeqs)], true, true)
      .toArray();
    expect(kept.filter((r) => r.bytes.length > 0 && erinSeqs.includes(r.seq))).toEqual([]);
    // An audit file exported now carries none of Erin's commits.
    const audit = Buffer.from(await a.db.exportAudit(space));
    for (const c of erinCipher) expect(audit.includes(c)).toBe(false);
    // It still verifies: the log is whole, and each device's chain is checked from its floor on.
    expect((await verifyAudit(audit)).findings).toEqual([]);

    // Work goes on after the compaction: the chains continue from the compacted heads.
    await b.db.patients.update(keepers[0]!, (p) => void (p.ward = "B"));
    await b.db.patients.insert({ name: "After", ward: "C", notes: "" }, { space });
    await relayAcknowledged(b.db, space.id);
    await named(a.db, "After");

    // A new member bootstraps from the compacted snapshot plus the tail, and converges without Erin.
    const toC = await a.db.invite(space, { role: "writer" });
    await relayAcknowledged(a.db, space.id);
    const c = await device("c");
    c.online(relay.url);
    await c.db.join(toC, { name: "Nurse C", relay: relay.url });
    await named(c.db, "After");
    await named(c.db, "Keeper 19");
    const rows = async (db: Db) =>
      (await db.patients.toArray()).map((p) => `${p.name}|${p.ward}|${p.notes}`).sort();
    await waitFor(
      c.db.live(() => c.db.patients.count()),
      (n) => n === keepers.length + 1,
      30_000,
      "C to hold every record",
    );
    expect(await rows(c.db)).toEqual(await rows(a.db));
    expect(await c.db.patients.get(erin)).toBeUndefined();
    // It started from the snapshot: it holds none of B's commits below the compaction.
    const cCommits = await c.db.replica.dexie
      .table<StoredCommit>("_commits")
      .where("[space+device+seq]")
      .between(
        [space.id, b.db.deviceId, 0],
        [space.id, b.db.deviceId, compaction.vector[b.db.deviceId]!],
        true,
        true,
      )
      .count();
    expect(cCommits).toBe(0);
    // And its writes reach the others.
    await c.db.patients.update(keepers[1]!, (p) => void (p.ward = "C"));
    await waitFor(
      b.db.patients.live((q) => q.where("ward").equals("C").toArray()),
      (r) => r.some((p) => p.id === keepers[1]),
      30_000,
      "B to see C's edit",
    );
  });

  it("a new member refuses a snapshot no compact operation names, and pulls every commit instead", async () => {
    const relay = await RelayHarness.start();
    const a = await device("admin");
    a.online(relay.url);
    const space = await a.db.createSpace({ name: "South Clinic" });
    const toC = await a.db.invite(space, { role: "writer", me: "Dr. Admin" });
    for (let i = 0; i < 5; i++)
      await a.db.patients.insert({ name: `P${i}`, ward: "A", notes: "" }, { space });
    await relayAcknowledged(a.db, space.id);
    // Published, but never named by a `compact`: no admin signed for these bytes.
    expect(await a.db.publishSnapshot(space)).toBe(true);
    const c = await device("c");
    c.online(relay.url);
    await c.db.join(toC, { name: "Nurse C", relay: relay.url });
    await waitFor(
      c.db.status,
      (s) => s.lastError?.code === "SnapshotError",
      30_000,
      "C to refuse the snapshot",
    );
    await named(c.db, "P4");
    // It replayed the commits: it holds the admin's whole log.
    const held = await c.db.replica.dexie
      .table<StoredCommit>("_commits")
      .where("[space+device+seq]")
      .between([space.id, a.db.deviceId, 0], [space.id, a.db.deviceId, Infinity], true, true)
      .count();
    expect(held).toBeGreaterThanOrEqual(5);
  });

  it("waits for a member device that is behind, so it is never stranded behind commits nobody serves", async () => {
    const relay = await RelayHarness.start(["--quiet"]);
    const [a, b] = await Promise.all([device("admin"), device("b")]);
    for (const x of [a, b]) x.online(relay.url);
    const space = await a.db.createSpace({ name: "Field Clinic" });
    const toB = await a.db.invite(space, { role: "writer", me: "Dr. Admin" });
    await relayAcknowledged(a.db, space.id);
    await b.db.join(toB, { name: "Tablet B", relay: relay.url });
    await b.db.patients.insert({ name: "Before", ward: "A", notes: "" }, { space });
    await named(a.db, "Before");
    // The tablet goes offline; the admin writes more, which the tablet does not have.
    b.offline();
    await a.db.patients.insert({ name: "While away", ward: "A", notes: "" }, { space });
    await relayAcknowledged(a.db, space.id);
    const refused = await a.db.compact(space, { timeout: 1_500 }).catch((e: unknown) => e);
    expect(refused).toMatchObject({ code: "CompactionError" });
    expect((refused as Error).message).toContain(b.db.deviceId.slice(0, 8));
    // Nothing was compacted: the tablet comes back, catches up and signs; now the compaction goes on.
    b.online(relay.url);
    await named(b.db, "While away");
    const done = await a.db.compact(space);
    expect(done.vector[a.db.deviceId]).toBeGreaterThan(0);
    // The tablet keeps syncing after it: it had everything the relay dropped.
    await a.db.patients.insert({ name: "After", ward: "A", notes: "" }, { space });
    await named(b.db, "After");
    await waitFor(b.db.status, (st) => st.state === "synced" && st.pendingCommits === 0, 30_000, "b synced");
  });
});
