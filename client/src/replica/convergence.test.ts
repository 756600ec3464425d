import { describe, expect, it } from "vitest";
import { openDatabase, type Database } from "../database.ts";
import type { Commit } from "./commit.ts";
import type { CommitQuarantined } from "../errors.ts";
import { seededRandom } from "../testing/seeded-random.ts";
import type { SpaceId } from "../types.ts";

type P = { name: string; ward: string; notes: string; tags: string[]; visits: number };
const collections = { patients: { indexes: "id, name, ward, *tags", text: ["notes"], counters: ["visits"] } };
let n = 0;

async function replicas(count: number) {
  const dbs: Database<{ patients: P }>[] = [];
  for (let i = 0; i < count; i++)
    dbs.push(await openDatabase<{ patients: P }>({ name: `conv-${n++}-${i}`, collections }));
  const space = await dbs[0]!.createSpace({ name: "Shared" });
  for (const db of dbs.slice(1)) {
    await db.replica.addSpace({
      id: space.id,
      name: "Shared",
      key: new Uint8Array(32),
      createdAt: 0,
      private: false,
    });
  }
  return { dbs, space: space.id };
}

async function snapshot(db: Database<{ patients: P }>, space: SpaceId) {
  const rows = await db.patients.orderBy("id").toArray();
  const commits = (await db.exportCommits({}, { spaces: [space] })).map((c) => c.id).sort();
  return { rows, vector: await db.vector([space]), commits };
}

describe("convergence of replicas exchanging commits by hand", () => {
  it("applying the same commits twice, or in another order, changes nothing", async () => {
    const { dbs, space } = await replicas(3);
    const [a, b, c] = dbs as [
      Database<{ patients: P }>,
      Database<{ patients: P }>,
      Database<{ patients: P }>,
    ];
    const id = await a.patients.insert(
      { name: "Ada", ward: "A", notes: "x", tags: [], visits: 0 },
      { space },
    );
    for (let i = 0; i < 5; i++) await a.patients.update(id, (p) => void (p.notes += String(i)));
    const commits = await a.exportCommits({}, { spaces: [space] });
    const r1 = await b.applyCommits(commits);
    expect(r1.applied.length).toBe(6);
    const again = await b.applyCommits(commits);
    expect(again.applied.length).toBe(0);
    expect(again.duplicates).toBe(6);
    const reversed = [...commits].reverse();
    const r2 = await c.applyCommits(reversed.slice(0, 3)); // seq 6,5,4: wait for 1..3
    expect(r2.applied).toEqual([]);
    expect(r2.pending).toBe(3);
    expect(await c.patients.count()).toBe(0);
    const r3 = await c.applyCommits(reversed.slice(3));
    expect(r3.applied.length).toBe(6);
    expect(r3.pending).toBe(0);
    expect(await snapshot(b, space)).toEqual(await snapshot(a, space));
    expect(await snapshot(c, space)).toEqual(await snapshot(a, space));
  });

  it("a commit depending on another device's commit waits for it", async () => {
    const { dbs, space } = await replicas(3);
    const [a, b, c] = dbs as [
      Database<{ patients: P }>,
      Database<{ patients: P }>,
      Database<{ patients: P }>,
    ];
    const id = await a.patients.insert({ name: "Ada", ward: "A", notes: "", tags: [], visits: 0 }, { space });
    const fromA = await a.exportCommits({}, { spaces: [space] });
    await b.applyCommits(fromA);
    await b.patients.update(id, (p) => void (p.name = "Ada B"));
    const fromB = await b.exportCommits({ [space]: { [a.deviceId]: 1 } }, { spaces: [space] });
    expect(fromB.map((x) => x.device)).toEqual([b.deviceId]);
    const early = await c.applyCommits(fromB);
    expect(early.applied).toEqual([]);
    expect(early.pending).toBe(1);
    const late = await c.applyCommits(fromA);
    expect(late.applied.length).toBe(2);
    expect((await c.patients.get(id))?.name).toBe("Ada B");
  });

  it("applies in one batch a commit that depends on a commit of a device sorting after it", async () => {
    const { dbs, space } = await replicas(3);
    // The editor's device id sorts before the author's, so its commit comes first in the batch.
    const [author, editor] = dbs[0]!.deviceId > dbs[1]!.deviceId ? [dbs[0]!, dbs[1]!] : [dbs[1]!, dbs[0]!];
    const c = dbs[2]!;
    const id = await author.patients.insert(
      { name: "Ada", ward: "A", notes: "x", tags: [], visits: 0 },
      { space },
    );
    const fromAuthor = await author.exportCommits({}, { spaces: [space] });
    await editor.applyCommits(fromAuthor);
    await editor.patients.update(id, (p) => void (p.notes = "x edited"));
    const fromEditor = await editor.exportCommits({ [space]: { [author.deviceId]: 1 } }, { spaces: [space] });
    const r = await c.applyCommits([...fromEditor, ...fromAuthor]);
    expect(r.applied.length).toBe(2);
    expect(r.pending).toBe(0);
    expect((await c.patients.get(id))?.notes).toBe("x edited");
  });

  it("refuses malformed commits and commits touching another space's records, applying the rest", async () => {
    const { dbs, space } = await replicas(2);
    const [a, b] = dbs as [Database<{ patients: P }>, Database<{ patients: P }>];
    const priv = await a.patients.insert({ name: "Private", ward: "A", notes: "", tags: [], visits: 0 });
    const shared = await a.patients.insert(
      { name: "Shared", ward: "A", notes: "", tags: [], visits: 0 },
      { space },
    );
    const good = await a.exportCommits({}, { spaces: [space] });
    const bad: Commit = { ...good[0]!, seq: 0 } as Commit;
    const r = await b.applyCommits([bad, ...good]);
    expect(r.rejected.map((x) => x.error.code)).toEqual(["ValidationError"]);
    expect(r.applied.length).toBe(1);
    expect((await b.patients.get(shared))?.name).toBe("Shared");
    // Commits of a space b has not joined are refused.
    const privCommit = (await a.exportCommits({}, { spaces: [a.privateSpace] }))[0]!;
    const ru = await b.applyCommits([privCommit]);
    expect(ru.rejected.map((x) => x.error.code)).toEqual(["ValidationError"]);
    // Once b holds both spaces, a commit of the shared space may not touch a record of the other one.
    await b.replica.addSpace({
      id: a.privateSpace,
      name: "A's",
      key: new Uint8Array(32),
      createdAt: 0,
      private: false,
    });
    expect((await b.applyCommits([privCommit])).applied.length).toBe(1);
    await a.patients.update(shared, (p) => void (p.name = "S2"));
    const next = (await a.exportCommits({ [space]: { [a.deviceId]: 1 } }, { spaces: [space] }))[0]!;
    const forged: Commit = { ...next, changes: [{ ...next.changes[0]!, record: priv }] };
    const rf = await b.applyCommits([forged]);
    expect(rf.applied).toEqual([]);
    // Authentic (it came as a commit of a joined space) but refused: quarantined in its slot.
    expect(rf.rejected.map((x) => [x.error.code, (x.error as CommitQuarantined).reason])).toEqual([
      ["CommitQuarantined", "misplaced"],
    ]);
    expect(rf.quarantined).toEqual([forged.id]);
    expect((await b.patients.get(priv))?.name).toBe("Private");
    expect((await b.patients.get(shared))?.name).toBe("Shared");
  });

  for (const seed of [1, 2, 3, 4, 5, 6, 7, 8]) {
    it(`random edits on 3 replicas converge after exchange in random order (seed ${seed})`, async () => {
      const rnd = seededRandom(seed);
      const { dbs, space } = await replicas(3);
      try {
        const ids: string[] = [];
        for (let round = 0; round < 4; round++) {
          for (const db of dbs) {
            const ops = 1 + rnd.int(4);
            for (let k = 0; k < ops; k++) {
              const live = (await db.patients.toArray()).map((r) => r.id);
              const choice = rnd.int(6);
              if (choice === 0 || live.length === 0) {
                ids.push(
                  await db.patients.insert(
                    {
                      name: `N${rnd.int(100)}`,
                      ward: rnd.pick(["A", "B"]),
                      notes: "note",
                      tags: [],
                      visits: 0,
                    },
                    { space },
                  ),
                );
              } else if (choice === 1) {
                await db.patients.delete(rnd.pick(live));
              } else if (choice === 2) {
                const pos = rnd.int(4);
                await db.patients.update(
                  rnd.pick(live),
                  (p) => void (p.notes = p.notes.slice(0, pos) + `[${seed}${k}]` + p.notes.slice(pos)),
                );
              } else if (choice === 3) {
                await db.patients.update(
                  rnd.pick(live),
                  (p) => void (p.visits as unknown as { increment(n: number): void }).increment(1),
                );
              } else if (choice === 4) {
                await db.patients.update(
                  rnd.pick(live),
                  (p) => void (p.tags as string[]).push(rnd.pick(["x", "y", "z"])),
                );
              } else {
                await db.transact(async (tx) => {
                  for (const id of live.slice(0, 2))
                    await tx.patients.update(id, (p) => void (p.ward = rnd.pick(["A", "B", "C"])));
                });
              }
            }
          }
          // Partial, shuffled, duplicated exchange between random pairs.
          for (let e = 0; e < 3; e++) {
            const from = rnd.pick(dbs);
            const to = rnd.pick(dbs);
            if (from === to) continue;
            const all = await from.exportCommits({}, { spaces: [space] });
            const some = rnd.shuffle(all).slice(0, 1 + rnd.int(all.length));
            await to.applyCommits([...some, ...some.slice(0, rnd.int(some.length))]);
          }
        }
        // Heal: everyone gets everything, in shuffled order.
        for (let pass = 0; pass < 2; pass++) {
          for (const from of dbs) {
            const all = await from.exportCommits({}, { spaces: [space] });
            for (const to of dbs) if (to !== from) await to.applyCommits(rnd.shuffle(all));
          }
        }
        const [s0, ...rest] = await Promise.all(dbs.map((db) => snapshot(db, space)));
        for (const s of rest) expect(s).toEqual(s0);
      } catch (e) {
        console.error(
          `convergence failed with seed ${seed}; replay: npx vitest run client/src/replica/convergence.test.ts -t "seed ${seed}"`,
        );
        throw e;
      }
    });
  }
});
