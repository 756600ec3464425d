// Content limits (issue 12, items 1, 2 and 7): the cheap Automerge op count agrees with Automerge's own
// decoder; local writes over a limit throw ValidationError (no stack overflow, nothing committed);
// commits depending on a quarantined one are quarantined too; a snapshot breaking a rule is refused whole.
import * as A from "@automerge/automerge";
import { describe, expect, it } from "vitest";
import { openDatabase, type Database } from "../database.ts";
import type { CommitQuarantined } from "../errors.ts";
import { DEFAULT_CONTENT_LIMITS } from "../protocol/limits.ts";
import { readSnapshot, importSnapshot } from "../snapshots/snapshot-io.ts";
import { seededRandom } from "../testing/seeded-random.ts";
import { changeOpCount } from "./change-ops.ts";
import type { Commit } from "./commit.ts";
import { checkContent, jsonNestsDeeper } from "./content-check.ts";

type P = { name: string; notes: string; extra?: unknown };
type Db = Database<{ patients: P }>;
const collections = { patients: { indexes: "id, name", text: ["notes"] } };
let n = 0;
const open = (): Promise<Db> =>
  openDatabase<{ patients: P }>({ name: `limits-${process.pid}-${n++}`, collections, persist: false });

function nested(depth: number): unknown {
  let v: unknown = 0;
  for (let i = 0; i < depth; i++) v = [v];
  return v;
}

describe("changeOpCount", () => {
  it("equals Automerge's decoded op count on seeded random changes, and refuses what it cannot read", () => {
    const seed = Number(process.env.SHOAL_LIMITS_SEED ?? 12);
    const rnd = seededRandom(seed);
    let doc = A.from<Record<string, unknown>>({ list: [], text: "", c: new A.Counter(0) });
    for (let round = 0; round < 25; round++) {
      doc = A.change(doc, (d) => {
        const list = d.list as unknown[];
        for (let k = rnd.int(25); k > 0; k--) {
          const what = rnd.int(7);
          if (what === 0) d[`k${rnd.int(50)}`] = rnd.int(1000);
          else if (what === 1) list.push({ a: rnd.int(9), b: [1, 2] });
          else if (what === 2 && list.length > 0) list.splice(rnd.int(list.length), 1);
          else if (what === 3) A.splice(d, ["text"], 0, 0, "xy".repeat(rnd.int(30)));
          else if (what === 4) (d.c as A.Counter).increment(rnd.int(5));
          else if (what === 5) delete d[`k${rnd.int(50)}`];
          else d[`s${rnd.int(5)}`] = new A.ImmutableString("v");
        }
      });
      const ch = A.getLastLocalChange(doc);
      if (!ch) continue;
      expect(changeOpCount(ch), `seed ${seed}, round ${round}`).toBe(A.decodeChange(ch).ops.length);
    }
    const ch = A.getLastLocalChange(A.change(A.init<Record<string, number>>(), (d) => void (d.x = 1)))!;
    expect(changeOpCount(ch.slice(0, ch.length - 3))).toBeNull();
    const compressed = ch.slice();
    compressed[8] = 2;
    expect(changeOpCount(compressed)).toBeNull();
    expect(changeOpCount(new Uint8Array([1, 2, 3]))).toBeNull();
  });
});

describe("content checks", () => {
  it("walk 100,000-deep values and JSON without recursion", () => {
    expect(checkContent(nested(100_000))).toContain("nested deeper than 32");
    expect(checkContent(nested(31))).toBeNull();
    const text = new TextEncoder().encode("[".repeat(100_000) + "]".repeat(100_000));
    expect(jsonNestsDeeper(text, 32)).toBe(true);
    const tricky = new TextEncoder().encode('["[[[[[[\\"", {"a": [1]}]');
    expect(jsonNestsDeeper(tricky, 3)).toBe(false);
    expect(jsonNestsDeeper(tricky, 2)).toBe(true);
  });
});

describe("local writes over a content limit", () => {
  it("throw ValidationError at insert, update and transact, and commit nothing", async () => {
    const db = await open();
    const id = await db.patients.insert({ name: "Ada", notes: "" });
    const before = await db.vector();
    await expect(
      db.patients.insert({ name: "Deep", notes: "", extra: nested(20_000) }),
    ).rejects.toMatchObject({
      code: "ValidationError",
    });
    await expect(db.patients.update(id, (p) => void (p.extra = nested(20_000)))).rejects.toMatchObject({
      code: "ValidationError",
    });
    await expect(
      db.patients.update(id, (p) => {
        const wide: Record<string, number> = {};
        for (let i = 0; i < 40_000; i++) wide[`k${i}`] = i;
        p.extra = wide;
      }),
    ).rejects.toMatchObject({ code: "ValidationError" });
    await expect(
      db.transact(async (tx) => {
        await tx.patients.insert({ name: "fine", notes: "" });
        const wide = Object.fromEntries(
          Array.from({ length: DEFAULT_CONTENT_LIMITS.maxKeysPerObject + 1 }, (_, i) => [`k${i}`, i]),
        );
        await tx.patients.insert({ name: "Wide", notes: "", extra: wide });
      }),
    ).rejects.toMatchObject({ code: "ValidationError" });
    await expect(db.patients.insert({ id: "x", name: "Id", notes: "" } as P)).rejects.toMatchObject({
      code: "ValidationError",
    });
    expect(await db.vector()).toEqual(before);
    expect((await db.patients.get(id))?.name).toBe("Ada");
    // Just under the limits is fine.
    await db.patients.insert({ name: "Ok", notes: "x".repeat(10_000), extra: nested(30) });
    await db.close();
  });
});

describe("dependents of a quarantined commit", () => {
  it("are quarantined too, with reason dependency, and the device's later commits apply", async () => {
    const a = await open();
    const b = await open();
    const space = await a.createSpace({ name: "Ward" });
    await b.join(await a.invite(space, "x:"));
    const r1 = await a.patients.insert({ name: "R1", notes: "" }, { space }); // seq 1
    await a.patients.update(r1, (p) => void (p.name = "R1 edited")); // seq 2: depends on seq 1's creation
    const r2 = await a.patients.insert({ name: "R2", notes: "" }, { space }); // seq 3
    await b.applyCommits((await a.exportCommits({})).filter((c) => c.seq === 3 || c.seq > 3));
    await a.patients.update(r2, (p) => void (p.name = "R2 once")); // seq 4
    await a.patients.update(r2, (p) => void (p.name = "R2 twice")); // seq 5: depends on seq 4
    await a.patients.insert({ name: "R3", notes: "" }, { space }); // seq 6
    const all = await a.exportCommits({}, { spaces: [space.id] });
    const bySeq = (s: number) => all.find((c) => c.seq === s)!;
    // Seq 1 gets a reserved field (a creation with `id`), seq 4 an invalid collection name.
    const c1 = bySeq(1);
    const rc1 = c1.changes[0]!;
    const bad1: Commit = {
      ...c1,
      changes: [{ ...rc1, create: { ...rc1.create!, json: { ...rc1.create!.json, id: r2 } } }],
    };
    const c4 = bySeq(4);
    const bad4: Commit = { ...c4, changes: [{ ...c4.changes[0]!, collection: "bad!" }] };
    const report = await b.applyCommits([bad1, bySeq(2), bySeq(3), bad4, bySeq(5), bySeq(6)]);
    const why = report.rejected.map((r) => [r.id, (r.error as CommitQuarantined).reason]);
    expect(why).toEqual([
      [bad1.id, "reserved"],
      [bySeq(2).id, "dependency"],
      [bad4.id, "malformed"],
      [bySeq(5).id, "dependency"],
    ]);
    expect(report.applied).toEqual([bySeq(3).id, bySeq(6).id]);
    expect((await b.vector([space.id]))[space.id]![a.deviceId]).toBe(6);
    expect((await b.patients.get(r2))?.name).toBe("R2");
    expect(await b.patients.where("name").equals("R3").count()).toBe(1);
    expect(await b.replica.dexie.table("_pending").count()).toBe(0);
    await a.close();
    await b.close();
  });
});

describe("a snapshot breaking a content rule", () => {
  it("is refused whole with a ValidationError and nothing of it is imported", async () => {
    const a = await open();
    const fresh = await open();
    const space = await a.createSpace({ name: "Snap" });
    await fresh.join(await a.invite(space, "x:"));
    const id = await a.patients.insert({ name: "Ada", notes: "" }, { space });
    await a.patients.update(id, (p) => void (p.name = "Ada L."));
    const content = await readSnapshot(a.replica, space.id);
    const doc = content.docs[0]!;
    const bad = { ...content, docs: [{ ...doc, row: { ...doc.row!, extra: nested(20_000) } }] };
    await expect(importSnapshot(fresh.replica, bad)).rejects.toMatchObject({ code: "ValidationError" });
    expect(await fresh.vector([space.id])).toEqual({});
    expect(await fresh.patients.count()).toBe(0);
    expect(await importSnapshot(fresh.replica, content)).toBe(true);
    expect((await fresh.patients.get(id))?.name).toBe("Ada L.");
    await a.close();
    await fresh.close();
  });
});
