// Sync by file: devices with no transport at all exchange bundles (exportBundle / importBundle), and
// damaged, doubled or foreign files behave as PROTOCOL.md "Bundles" says.
import { afterEach, describe, expect, it } from "vitest";
import { sha256 } from "../../src/crypto/seal.ts";
import { InvalidBundle, openDatabase, type Database, type Space } from "../../src/index.ts";
import { fromHex } from "../../src/protocol/index.ts";
import { decodeBundle } from "../../src/bundles/bundle.ts";

type P = { name: string; ward: string; notes: string };
type Db = Database<{ patients: P }>;
const collections = { patients: { indexes: "id, name, ward", text: ["notes"] } };
let n = 0;
const opened: Db[] = [];
afterEach(async () => {
  for (const db of opened.splice(0)) await db.close();
});

async function device(): Promise<Db> {
  const db = await openDatabase<{ patients: P }>({ name: `bundle-${n++}`, collections, persist: false });
  opened.push(db);
  return db;
}

/** A clinic on `a`, joined by every other device through its invitation link (no sync is ever started). */
async function clinic(a: Db, ...others: Db[]): Promise<Space> {
  const space = await a.createSpace({ name: "Field clinic" });
  for (const o of others) await o.join(await a.invite(space, "https://app.example/"));
  return space;
}

/** What `to` lacks, written by `from` against `to`'s vector, then imported by `to`. */
async function carry(from: Db, to: Db, space: Space) {
  const bytes = await from.exportBundle({ space, since: await to.vector([space.id]) });
  return { bytes, report: await to.importBundle(bytes) };
}

/** Everything observable about a replica's state for one space: rows, vector, kept sealed bytes. */
async function snapshot(db: Db, space: Space) {
  return {
    rows: (await db.patients.orderBy("name").toArray()).map((p) => ({ ...p })),
    vector: await db.vector([space.id]),
    sealed: await db.replica.dexie.table("_sealed").count(),
    pending: await db.replica.dexie.table("_pending").count(),
  };
}

/** Byte offsets where each commit's length prefix starts, and where the end marker starts. */
async function boundaries(bytes: Uint8Array): Promise<{ commitsAt: number[]; endAt: number }> {
  const b = await decodeBundle(bytes);
  const endAt = bytes.length - 40;
  let at = endAt - b.commits.reduce((s, c) => s + 4 + c.length, 0);
  const commitsAt = b.commits.map((c) => {
    const here = at;
    at += 4 + c.length;
    return here;
  });
  return { commitsAt, endAt };
}

async function expectInvalid(p: Promise<unknown>, ...reasons: string[]): Promise<void> {
  const e = await p.then(
    () => null,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(InvalidBundle);
  expect((e as InvalidBundle).code).toBe("InvalidBundle");
  if (reasons.length > 0) expect(reasons).toContain((e as InvalidBundle).reason);
}

describe("sync by file", () => {
  it("two devices converge through files both ways, incrementally, merging concurrent edits of one note", async () => {
    const a = await device();
    const b = await device();
    const space = await clinic(a, b);
    const ada = await a.patients.insert({ name: "Ada", ward: "A", notes: "Fever." }, { space });
    await a.patients.insert({ name: "Grace", ward: "B", notes: "" }, { space });
    await a.patients.insert({ name: "Alan", ward: "A", notes: "" }, { space });

    // The first file carries the whole space.
    const whole = await a.exportBundle({ space });
    const first = await b.importBundle(whole);
    expect(first).toMatchObject({
      space: space.id,
      duplicates: 0,
      missing: [],
      complete: true,
      rejected: [],
    });
    expect(first.applied).toHaveLength(3);
    expect((await b.patients.orderBy("name").toArray()).map((p) => p.name)).toEqual(["Ada", "Alan", "Grace"]);

    // Back the other way: only b's new commit travels, because a's vector says what it has.
    await b.patients.insert({ name: "Mary", ward: "C", notes: "" }, { space });
    const back = await carry(b, a, space);
    expect((await decodeBundle(back.bytes)).commits).toHaveLength(1);
    expect(back.report.applied).toEqual([`${space.id}.${b.deviceId}.1`]);
    expect(await a.patients.count()).toBe(4);

    // Both edit Ada's note with no connection at all, then swap files.
    await a.patients.update(ada, (p) => void (p.notes = "Seen at 9. Fever."));
    await b.patients.update(ada, (p) => void (p.notes = "Fever. Paracetamol given."));
    await b.patients.update(ada, (p) => void (p.ward = "C"));
    const toB = await carry(a, b, space);
    const toA = await carry(b, a, space);
    expect(toB.report.applied).toHaveLength(1);
    expect(toA.report.applied).toHaveLength(2);
    const want = "Seen at 9. Fever. Paracetamol given.";
    expect((await a.patients.get(ada))?.notes).toBe(want);
    expect((await b.patients.get(ada))?.notes).toBe(want);
    expect((await a.patients.get(ada))?.ward).toBe("C");
    const [sa, sb] = [await snapshot(a, space), await snapshot(b, space)];
    expect(sa.rows).toEqual(sb.rows);
    expect(sa.vector).toEqual(sb.vector);
    // Nothing is left to carry either way.
    expect((await decodeBundle(await a.exportBundle({ space, since: sb.vector }))).commits).toHaveLength(0);
  });

  it("a file imported twice changes nothing the second time", async () => {
    const a = await device();
    const b = await device();
    const space = await clinic(a, b);
    for (const name of ["Ada", "Grace", "Alan"])
      await a.patients.insert({ name, ward: "A", notes: "" }, { space });
    const file = await a.exportBundle({ space });
    const once = await b.importBundle(file);
    const after = await snapshot(b, space);
    const twice = await b.importBundle(new Blob([file]));
    expect(once.applied).toHaveLength(3);
    expect(twice).toMatchObject({ applied: [], duplicates: 3, missing: [], complete: true });
    expect(await snapshot(b, space)).toEqual(after);
  });

  it("a truncated file imports every whole commit before the cut and reports the rest as missing", async () => {
    const a = await device();
    const b = await device();
    const space = await clinic(a, b);
    for (let i = 0; i < 6; i++)
      await a.patients.insert({ name: `P${i}`, ward: "A", notes: `note ${i}` }, { space });
    const file = await a.exportBundle({ space });
    const { commitsAt, endAt } = await boundaries(file);
    const me = a.deviceId;

    // Cut inside the header: nothing can be trusted, nothing is imported.
    const before = await snapshot(b, space);
    await expectInvalid(b.importBundle(file.slice(0, 40)), "truncated");
    expect(await snapshot(b, space)).toEqual(before);

    // Cuts at growing lengths on one receiver: right after the header, in the middle of commit 3, on the
    // boundary after commit 4, and inside the end marker (every commit there, but unverifiable).
    const cuts = [
      { at: commitsAt[0]!, whole: 0 },
      { at: commitsAt[2]! + 50, whole: 2 },
      { at: commitsAt[4]!, whole: 4 },
      { at: endAt + 10, whole: 6 },
    ];
    let held = 0;
    for (const { at, whole } of cuts) {
      const report = await b.importBundle(file.slice(0, at));
      expect(report.complete).toBe(false);
      expect(report.applied).toHaveLength(whole - held);
      expect(report.duplicates).toBe(held);
      expect(report.missing).toEqual(whole === 6 ? [] : [{ device: me, from: whole + 1, to: 6 }]);
      expect((await b.vector([space.id]))[space.id]?.[me] ?? 0).toBe(whole);
      expect(await b.patients.count()).toBe(whole);
      held = whole;
    }
    const full = await b.importBundle(file);
    expect(full).toMatchObject({ applied: [], duplicates: 6, missing: [], complete: true });
    expect((await snapshot(b, space)).rows).toEqual((await snapshot(a, space)).rows);
  });

  it("commits a bundle assumed the receiver had are reported missing, and apply once they arrive", async () => {
    const a = await device();
    const b = await device();
    const space = await clinic(a, b);
    for (let i = 0; i < 4; i++) await a.patients.insert({ name: `P${i}`, ward: "A", notes: "" }, { space });
    // Made against a vector claiming b holds two commits it never received.
    const later = await a.exportBundle({ space, since: { [space.id]: { [a.deviceId]: 2 } } });
    const r = await b.importBundle(later);
    expect(r).toMatchObject({
      applied: [],
      missing: [{ device: a.deviceId, from: 1, to: 4 }],
      complete: true,
    });
    expect(await b.patients.count()).toBe(0);
    // The missing part arrives: the parked commits apply with it.
    const rest = await b.importBundle(await a.exportBundle({ space, since: await b.vector([space.id]) }));
    expect(rest.missing).toEqual([]);
    expect(await b.patients.count()).toBe(4);
  });

  it("a corrupted file is refused and imports nothing, wherever the flipped bit is", async () => {
    const a = await device();
    const b = await device();
    const space = await clinic(a, b);
    for (let i = 0; i < 4; i++)
      await a.patients.insert({ name: `P${i}`, ward: "A", notes: "x".repeat(50 * i) }, { space });
    const file = await a.exportBundle({ space });
    const { commitsAt, endAt } = await boundaries(file);
    const before = await snapshot(b, space);
    const offsets = [
      3, // magic
      12, // space id
      30, // declared length
      commitsAt[0]! - 40, // table of contents
      commitsAt[0]! - 5, // header hash
      commitsAt[1]! + 2, // a length prefix
      commitsAt[1]! + 4 + 40, // a commit's routing header (seq, epoch)
      commitsAt[3]! + 200, // inside the last commit's ciphertext
      endAt + 6, // the count
      file.length - 1, // the file hash
    ];
    for (const at of offsets) {
      for (const bit of [0, 7]) {
        const bad = file.slice();
        bad[at]! ^= 1 << bit;
        await expectInvalid(b.importBundle(bad));
      }
    }
    expect(await snapshot(b, space)).toEqual(before);

    // Truncated AND damaged: the end hash is gone, so each commit's own seal catches it. The first two
    // commits are sound, yet nothing is applied, since the file is no longer what its sender wrote.
    const cutBad = file.slice(0, endAt);
    cutBad[commitsAt[2]! + 150]! ^= 0x01;
    await expectInvalid(b.importBundle(cutBad), "unopenable");
    expect(await snapshot(b, space)).toEqual(before);
  });

  it("a foreign file is refused and imports nothing: a space not joined, another space, another key", async () => {
    const a = await device();
    const b = await device();
    const stranger = await device();
    const space = await clinic(a, b);
    const elsewhere = await a.createSpace({ name: "Other clinic" });
    await b.join(await a.invite(elsewhere, "https://app.example/"));
    await a.patients.insert({ name: "Ada", ward: "A", notes: "" }, { space });
    await a.patients.insert({ name: "Eve", ward: "E", notes: "" }, { space: elsewhere });
    const file = await a.exportBundle({ space });

    // A device that never joined the space.
    await expectInvalid(stranger.importBundle(file), "unknown-space");
    expect(await stranger.patients.count()).toBe(0);

    // A space b has not joined (a's private space).
    await expectInvalid(b.importBundle(await a.exportBundle({ space: a.privateSpace })), "unknown-space");

    // A file whose header names one space b holds while its commits belong to another: re-sealing the
    // file's hashes (anyone can) does not make the commits open.
    const other = await a.exportBundle({ space: elsewhere });
    const before = await snapshot(b, space);
    await expectInvalid(b.importBundle(await rehomed(other, space.id)), "foreign");
    expect(await snapshot(b, space)).toEqual(before);

    // A device holding another key under this space's id: no commit opens, nothing is imported.
    await b.replica.dexie
      .table("_spaces")
      .update(space.id, { key: crypto.getRandomValues(new Uint8Array(32)) });
    await expectInvalid(b.importBundle(file), "unopenable");
    expect(await snapshot(b, space)).toEqual(before);
    expect(await b.patients.count()).toBe(0);
  });
});

/** The same file with its header's space id replaced and both hashes recomputed. */
async function rehomed(file: Uint8Array, space: string): Promise<Uint8Array> {
  const c = file.slice();
  c.set(fromHex(space, 16), 10);
  const v = new DataView(c.buffer);
  const s = v.getUint16(34);
  const r = v.getUint16(36 + 24 * s);
  const headerHashAt = 38 + 24 * s + 32 * r;
  c.set(await sha256(c.subarray(0, headerHashAt)), headerHashAt);
  c.set(await sha256(c.subarray(0, c.length - 32)), c.length - 32);
  return c;
}
