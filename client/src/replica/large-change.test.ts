// Issue 12, item 7: one commit must not stall the page. A receiver refuses an Automerge change (or a
// creation) over MAX_OPS_PER_CHANGE and applies a commit of many changes in slices of at most one
// maximal change, yielding between them; an honest writer cuts a large write (a long pasted note,
// thousands of keys) into changes within the cap, so it stays writable and syncs. No timing here: the
// slices are counted (`replica.stats`), the stall they bound is measured in docs/RELIABILITY.md.
import * as A from "@automerge/automerge";
import { afterEach, describe, expect, it } from "vitest";
import { openDatabase, type Database } from "../database.ts";
import type { CommitQuarantined } from "../errors.ts";
import { DEFAULT_CONTENT_LIMITS } from "../protocol/limits.ts";
import { seededRandom } from "../testing/seeded-random.ts";
import { changeOpCount } from "./change-ops.ts";
import { commitId, type Commit } from "./commit.ts";

type P = { name: string; notes: string; extra?: unknown };
type Db = Database<{ patients: P }>;
const collections = { patients: { indexes: "id, name", text: ["notes"] } };
const CAP = DEFAULT_CONTENT_LIMITS.maxOpsPerChange;
const cleanup: Db[] = [];
afterEach(async () => {
  for (const db of cleanup.splice(0)) await db.close();
});
let n = 0;
async function open(): Promise<Db> {
  const db = await openDatabase<{ patients: P }>({
    name: `large-change-${process.pid}-${n++}`,
    collections,
    persist: false,
  });
  cleanup.push(db);
  return db;
}

/** Two devices of one space; `b` holds everything `a` wrote so far. */
async function pair() {
  const a = await open();
  const b = await open();
  const space = await a.createSpace({ name: "Ward" });
  await b.join(await a.invite(space, "https://app.example/"));
  const sync = async (from: Db, to: Db, since = {}) => to.applyCommits(await from.exportCommits(since));
  return { a, b, space, sync };
}

/** Every Automerge change of a commit holds at most the cap, and it carries no creation over it. */
function withinCap(c: Commit): void {
  for (const rc of c.changes) for (const ch of rc.changes) expect(changeOpCount(ch)).toBeLessThanOrEqual(CAP);
}

/** A change of `ops` new root keys on top of `a`'s document of `id`, made without Shoal's writer. */
async function hostileChange(a: Db, id: string, ops: number, prefix = "k"): Promise<Uint8Array> {
  const loaded = (await a.replica.loadForEdit(id))!;
  const doc = A.change(A.clone(loaded.doc, { actor: a.replica.actor }), (d: Record<string, unknown>) => {
    for (let i = 0; i < ops; i++) d[`${prefix}${i}`] = i;
  });
  const ch = A.getLastLocalChange(doc)!;
  expect(changeOpCount(ch)).toBe(ops);
  return ch;
}

describe("a hostile change at the op cap", () => {
  it("is applied exactly at the cap; one operation over, it is quarantined and the device goes on", async () => {
    const { a, b, space, sync } = await pair();
    const r1 = await a.patients.insert({ name: "R1", notes: "" }, { space });
    const r2 = await a.patients.insert({ name: "R2", notes: "" }, { space });
    const r3 = await a.patients.insert({ name: "R3", notes: "" }, { space });
    await a.patients.update(r1, (p) => void (p.name = "R1 built")); // documents to build on
    await a.patients.update(r2, (p) => void (p.name = "R2 built"));
    await sync(a, b);
    const since = await a.vector([space.id]);
    const atCap = await hostileChange(a, r1, CAP);
    const over = await hostileChange(a, r2, CAP + 1);
    // Envelopes from real commits of a; their changes replaced by the forged ones.
    await a.patients.update(r1, (p) => void (p.name = "x"));
    await a.patients.update(r2, (p) => void (p.name = "y"));
    await a.patients.update(r3, (p) => void (p.name = "R3 later"));
    const [c1, c2, c3] = await a.exportCommits(since);
    const forged = (c: Commit, ch: Uint8Array): Commit => ({
      ...c,
      changes: [{ ...c.changes[0]!, changes: [ch], paths: ["k0"] }],
    });
    const report = await b.applyCommits([forged(c1!, atCap), forged(c2!, over), c3!]);
    expect(report.applied).toEqual([c1!.id, c3!.id]);
    expect(report.rejected.map((r) => [r.id, (r.error as CommitQuarantined).reason])).toEqual([
      [c2!.id, "limits"],
    ]);
    expect(((await b.patients.get(r1)) as Record<string, unknown>)[`k${CAP - 1}`]).toBe(CAP - 1);
    expect((await b.patients.get(r2))?.name).toBe("R2 built");
    expect((await b.patients.get(r3))?.name).toBe("R3 later");
    expect((await b.vector([space.id]))[space.id]![a.deviceId]).toBe(c3!.seq);
  });

  it("holds for creations too: at the cap once built it is applied, one over it is quarantined", async () => {
    const { a, b, space } = await pair();
    await a.patients.insert({ name: "N1", notes: "" }, { space });
    await a.patients.insert({ name: "N2", notes: "" }, { space });
    const [, , c1, c2] = await a
      .exportCommits({}, { spaces: [space.id] })
      .then((cs) => [null, null, ...cs.filter((c) => c.changes[0]?.create)]);
    // Values: the root, name and notes (3), plus one operation per UTF-16 unit of the text `notes`.
    const sized = (c: Commit, units: number): Commit => {
      const rc = c.changes[0]!;
      return {
        ...c,
        changes: [
          { ...rc, create: { ...rc.create!, json: { ...rc.create!.json, notes: "n".repeat(units) } } },
        ],
      };
    };
    const report = await b.applyCommits([sized(c1!, CAP - 3), sized(c2!, CAP - 2)]);
    expect(report.applied).toEqual([c1!.id]);
    expect(report.rejected.map((r) => (r.error as CommitQuarantined).reason)).toEqual(["limits"]);
    expect((await b.patients.get(c1!.changes[0]!.record))?.notes).toHaveLength(CAP - 3);
  });
});

describe("a change with operations Shoal never makes", () => {
  it("(marks: about 40x the cost of an ordinary operation) is quarantined as malformed", async () => {
    const { a, b, space, sync } = await pair();
    const id = await a.patients.insert({ name: "M", notes: "hello world" }, { space });
    await a.patients.update(id, (p) => void (p.name = "M built"));
    await sync(a, b);
    const since = await a.vector([space.id]);
    const loaded = (await a.replica.loadForEdit(id))!;
    const marked = A.change(A.clone(loaded.doc, { actor: a.replica.actor }), (d: Record<string, unknown>) =>
      A.mark(d, ["notes"], { start: 0, end: 5, expand: "none" }, "bold", true),
    );
    const mark = A.getLastLocalChange(marked)!;
    expect(changeOpCount(mark)).toBe(2); // within the cap: refused for its kind, not its size
    await a.patients.update(id, (p) => void (p.name = "envelope"));
    const [c] = await a.exportCommits(since);
    const forged: Commit = { ...c!, changes: [{ ...c!.changes[0]!, changes: [mark] }] };
    const report = await b.applyCommits([forged]);
    expect(report.rejected.map((r) => (r.error as CommitQuarantined).reason)).toEqual(["malformed"]);
    expect((await b.patients.get(id))?.name).toBe("M built");
  });
});

describe("large honest writes", () => {
  it(
    "a 100,000-character note is written in changes within the cap and syncs both ways",
    { timeout: 60_000 },
    async () => {
      const { a, b, space, sync } = await pair();
      const rnd = seededRandom(100);
      const note = Array.from({ length: 100_000 }, () => String.fromCharCode(97 + rnd.int(26))).join("");
      const id = await a.patients.insert({ name: "Ada", notes: note }, { space });
      const [insert] = await a.exportCommits({}, { spaces: [space.id] });
      expect(insert!.changes[0]!.create).toBeUndefined(); // over the cap: sent as Automerge changes
      expect(insert!.changes[0]!.changes.length).toBeGreaterThan(100_000 / CAP);
      withinCap(insert!);
      await sync(a, b);
      expect((await b.patients.get(id))?.notes).toBe(note);
      // An edit over the cap (1,500 characters added) and a small edit from the other side.
      const since = await a.vector();
      const replaced = note.slice(0, 50_000) + "y".repeat(1_500) + note.slice(50_000);
      await a.patients.update(id, (p) => void (p.notes = replaced));
      const [update] = await a.exportCommits(since);
      expect(update!.changes[0]!.changes.length).toBe(3);
      withinCap(update!);
      const sinceB = await b.vector();
      await b.patients.update(id, (p) => void (p.name = "Ada L."));
      expect((await sync(a, b, since)).applied).toEqual([update!.id]);
      expect((await sync(b, a, sinceB)).applied).toHaveLength(1);
      for (const db of [a, b])
        expect(await db.patients.get(id)).toMatchObject({ name: "Ada L.", notes: replaced });
    },
  );

  it(
    "a record with the most keys of an object is written in changes within the cap and syncs",
    { timeout: 60_000 },
    async () => {
      const { a, b, space, sync } = await pair();
      const keys = DEFAULT_CONTENT_LIMITS.maxKeysPerObject;
      const wide = (v: number) =>
        Object.fromEntries(Array.from({ length: keys }, (_, i) => [`k${i}`, i + v]));
      const id = await a.patients.insert({ name: "Wide", notes: "", extra: wide(0) }, { space });
      await a.patients.update(id, (p) => void (p.extra = wide(1))); // every key overwritten
      const commits = await a.exportCommits({}, { spaces: [space.id] });
      for (const c of commits) withinCap(c);
      expect(commits.every((c) => c.changes.every((rc) => !rc.create))).toBe(true);
      const report = await sync(a, b);
      expect(report.rejected).toEqual([]);
      expect((await b.patients.get(id))?.extra).toEqual(wide(1));
    },
  );
});

describe("applying a commit at the caps", () => {
  it(
    "yields between its changes: no slice applies more than one maximal change",
    { timeout: 60_000 },
    async () => {
      const { a, b, space, sync } = await pair();
      const ids = [
        await a.patients.insert({ name: "T1", notes: "" }, { space }),
        await a.patients.insert({ name: "T2", notes: "" }, { space }),
      ];
      await a.patients.update(ids[0]!, (p) => void (p.name = "T1 built"));
      await a.patients.update(ids[1]!, (p) => void (p.name = "T2 built"));
      await sync(a, b);
      const since = await a.vector([space.id]);
      // A hostile commit: per record, 40 maximal changes (text appends, each exactly at the cap).
      const PER_RECORD = 40;
      const forgedChanges: Uint8Array[][] = [];
      for (const id of ids) {
        let doc = A.clone((await a.replica.loadForEdit(id))!.doc, { actor: a.replica.actor });
        const out: Uint8Array[] = [];
        for (let i = 0; i < PER_RECORD; i++) {
          doc = A.change(doc, (d: Record<string, unknown>) => A.splice(d, ["notes"], 0, 0, "z".repeat(CAP)));
          out.push(A.getLastLocalChange(doc)!);
        }
        forgedChanges.push(out);
      }
      await a.transact(async (tx) => {
        for (const id of ids) await tx.patients.update(id, (p) => void (p.name = "envelope"));
      });
      const [envelope] = await a.exportCommits(since);
      const big: Commit = {
        ...envelope!,
        changes: envelope!.changes.map((rc, i) => ({ ...rc, changes: forgedChanges[i]!, paths: ["notes"] })),
      };
      withinCap(big);
      const before = { ...b.replica.stats };
      const runs = 2 * PER_RECORD;
      // A heartbeat of event-loop tasks, the first queued before the apply starts: each beat notes how
      // many Automerge calls the apply has made so far. Had the apply held the event loop from its first
      // call to its last, the beats would see only "none yet" and "all of them". (Immediates, as the
      // apply's own yields under Node: a 1 ms timer may sleep through a slice shorter than that.)
      const seen = new Set<number>();
      let beating = true;
      const beat = () => {
        seen.add(b.replica.stats.applyChangesCalls - before.applyChangesCalls);
        if (beating) setImmediate(beat);
      };
      setImmediate(beat);
      const report = await b.applyCommits([big]);
      beating = false;
      expect(report.applied).toEqual([big.id]);
      const midway = [...seen].filter((calls) => calls > 0 && calls < runs);
      expect(midway.length).toBeGreaterThanOrEqual(runs - 1);
      const stats = b.replica.stats;
      // One Automerge call per maximal change, each in a slice of its own: a yield between any two.
      expect(stats.applyChangesCalls - before.applyChangesCalls).toBeGreaterThanOrEqual(runs);
      expect(stats.applyYields - before.applyYields).toBeGreaterThanOrEqual(runs - 1);
      expect(stats.maxOpsPerSlice).toBeLessThanOrEqual(CAP);
      for (const id of ids) expect((await b.patients.get(id))?.notes).toHaveLength(PER_RECORD * CAP);
    },
  );
});

describe("a bootstrap of many new records", () => {
  it("applies thousands of creation commits in one call without its transaction committing early", async () => {
    // Creations only take one IndexedDB transaction per chunk, with the chunk's (no-op) Automerge step
    // run inside it. That step once awaited between records: past Dexie's zone echoes the
    // transaction committed early (PrematureCommitError) and the whole bootstrap failed.
    const { a, b, space } = await pair();
    await a.patients.insert({ name: "template", notes: "" }, { space });
    const [template] = await a.exportCommits({}, { spaces: [space.id] });
    const rc = template!.changes[0]!;
    const COUNT = 3_000;
    const commits: Commit[] = Array.from({ length: COUNT }, (_, i) => {
      const hex = (0xd0000000 + i).toString(16);
      const device = `${hex}${"00".repeat(12)}` as Commit["device"];
      return {
        ...template!,
        id: commitId(space.id, device, 1),
        device,
        seq: 1,
        changes: [
          {
            ...rc,
            record: `01890000-0000-7000-8000-${hex}0000` as typeof rc.record,
            create: { ...rc.create!, json: { name: `N${i}`, notes: "" } },
          },
        ],
      };
    });
    const report = await b.applyCommits(commits);
    expect(report.rejected).toEqual([]);
    expect(report.applied).toHaveLength(COUNT);
    expect(await b.patients.count()).toBe(COUNT);
  }, 60_000); // thousands of records: seconds on a loaded machine
});
