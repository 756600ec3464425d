import * as A from "@automerge/automerge";
import { afterEach, describe, expect, it } from "vitest";
import { openDatabase, type DatabaseFromDeclarations } from "../database.ts";
import { SchemaError, ValidationError } from "../errors.ts";
import { collection } from "./collection-declaration.ts";
import { changeAuthor } from "./change-author.ts";
import { conflictsOf, MAX_CONFLICT_VALUES, withoutConflicts } from "./conflict-values.ts";
import { auditSnapshot } from "../snapshots/snapshot-audit.ts";
import { importSnapshot, readSnapshot } from "../snapshots/snapshot-io.ts";
import type { Conflict } from "./list-conflicts.ts";
import type { SpaceId } from "../types.ts";

type Patient = { name: string; dose: number; allergies: string[]; ward: string };
const collections = {
  patients: collection<Patient>()({
    indexes: "id, name, ward",
    conflicts: { dose: "inbox", allergies: "inbox" },
  }),
};
type Db = DatabaseFromDeclarations<typeof collections>;
let n = 0;
const open: Db[] = [];

afterEach(async () => {
  for (const db of open.splice(0)) await db.close();
});

/** Two replicas of one shared space, and a record both hold. */
async function pair(): Promise<{ a: Db; b: Db; space: SpaceId; id: string }> {
  const a = await openDatabase({ name: `inbox-${n++}-a`, collections });
  const b = await openDatabase({ name: `inbox-${n++}-b`, collections });
  open.push(a, b);
  const space = (await a.createSpace({ name: "Ward" })).id;
  await b.replica.addSpace({
    id: space,
    name: "Ward",
    key: new Uint8Array(32),
    createdAt: 0,
    private: false,
  });
  const id = await a.patients.insert({ name: "Ada", dose: 1, allergies: [], ward: "A" }, { space });
  await exchange(a, b, space);
  return { a, b, space, id };
}

/** Each replica receives the commits of the other that it lacks. */
async function exchange(a: Db, b: Db, space: SpaceId): Promise<void> {
  const toB = await a.exportCommits(await b.vector([space]), { spaces: [space] });
  const toA = await b.exportCommits(await a.vector([space]), { spaces: [space] });
  await b.applyCommits(toB);
  await a.applyCommits(toA);
}

/** The first value `db.conflicts()` emits that satisfies `ok`. */
function conflictsWhen(db: Db, ok: (list: Conflict[]) => boolean): Promise<Conflict[]> {
  return new Promise((resolve, reject) => {
    const sub = db.conflicts().subscribe({
      next: (list) => {
        if (!ok(list)) return;
        queueMicrotask(() => sub.unsubscribe());
        resolve(list);
      },
      error: reject,
    });
  });
}

describe("conflict inbox", () => {
  it("two devices setting different doses concurrently list the same conflict, with both values and authors", async () => {
    const { a, b, space, id } = await pair();
    await a.patients.update(id, (p) => void (p.dose = 5));
    await b.patients.update(id, (p) => void (p.dose = 10));
    await exchange(a, b, space);
    const listA = await conflictsWhen(a, (l) => l.length > 0);
    const listB = await conflictsWhen(b, (l) => l.length > 0);
    expect(listA).toEqual(listB);
    expect(listA).toHaveLength(1);
    const [c] = listA as [Conflict];
    expect(c).toMatchObject({ collection: "patients", id, field: "dose", omitted: 0 });
    expect(c.values.map((v) => v.value).sort()).toEqual([10, 5]);
    const byValue = new Map(c.values.map((v) => [v.value, v]));
    expect(byValue.get(5)!.device).toBe(a.deviceId);
    expect(byValue.get(10)!.device).toBe(b.deviceId);
    for (const v of c.values) {
      expect(typeof v.at).toBe("number");
      expect(v.commit).toMatch(/./);
    }
    // The field keeps one winner, the same on both; the row says it is conflicted.
    const rowA = (await a.patients.get(id))!;
    const rowB = (await b.patients.get(id))!;
    expect(rowA).toEqual(rowB);
    expect(rowA.dose).toBe(c.values[0]!.value);
    expect((rowA as Record<string, unknown>).$conflicts).toEqual({
      dose: { values: c.values.map(({ value, op }) => ({ value, op })), omitted: 0 },
    });
  }, 30_000);

  it("resolving on one device clears the conflict on both once they exchange", async () => {
    const { a, b, space, id } = await pair();
    await a.patients.update(id, (p) => void (p.allergies = ["penicillin"]));
    await b.patients.update(id, (p) => void (p.allergies = ["latex"]));
    await exchange(a, b, space);
    const before = await conflictsWhen(b, (l) => l.length === 1);
    expect(before[0]!.field).toBe("allergies");
    // Resolving with one of the candidates is an ordinary attributed commit.
    await b.patients.resolve(id, "allergies", ["latex", "penicillin"]);
    expect(await conflictsWhen(b, (l) => l.length === 0)).toEqual([]);
    await exchange(a, b, space);
    expect(await conflictsWhen(a, (l) => l.length === 0)).toEqual([]);
    const row = (await a.patients.get(id))! as Record<string, unknown>;
    expect(row.allergies).toEqual(["latex", "penicillin"]);
    expect(row.$conflicts).toBeUndefined();
    expect(row.$conflicted).toBeUndefined();
    expect(await b.patients.get(id)).toEqual(row);
    const last = (await a.patients.history(id)).at(-1)!;
    expect(last.device).toBe(b.deviceId);
    expect(last.paths).toEqual(["allergies"]);
  }, 30_000);

  it("db.conflicts() is live: one subscription sees the conflict arrive and its resolution clear it", async () => {
    const { a, b, space, id } = await pair();
    const seen: Conflict[][] = [];
    let wake = () => {};
    const sub = a.conflicts({ collections: ["patients"] }).subscribe((list) => {
      seen.push(list);
      wake();
    });
    const until = (ok: (l: Conflict[]) => boolean) =>
      new Promise<void>((resolve) => {
        wake = () => seen.some(ok) && resolve();
        wake();
      });
    try {
      await until((l) => l.length === 0);
      await a.patients.update(id, (p) => void (p.dose = 5));
      await b.patients.update(id, (p) => void (p.dose = 10));
      await exchange(a, b, space);
      await until((l) => l.length === 1);
      const at = seen.length;
      await b.patients.resolve(id, "dose", 7);
      await exchange(a, b, space);
      await until((l) => seen.indexOf(l) >= at && l.length === 0);
      expect((await a.patients.get(id))!.dose).toBe(7);
    } finally {
      sub.unsubscribe();
    }
    // A collection filter that names no inbox collection lists nothing.
    expect(await new Promise((r) => a.conflicts({ collections: ["visits"] }).subscribe(r))).toEqual([]);
  }, 30_000);

  it("resolving with a value equal to a candidate clears it too", async () => {
    const { a, b, space, id } = await pair();
    await a.patients.update(id, (p) => void (p.dose = 5));
    await b.patients.update(id, (p) => void (p.dose = 10));
    await exchange(a, b, space);
    const [c] = await conflictsWhen(a, (l) => l.length === 1);
    const winner = c!.values[0]!.value as number;
    await a.patients.resolve(id, "dose", winner);
    await exchange(a, b, space);
    expect(await conflictsWhen(b, (l) => l.length === 0)).toEqual([]);
    expect((await b.patients.get(id))!.dose).toBe(winner);
  }, 30_000);

  it("concurrent resolutions on two devices make a new conflict of the two resolutions", async () => {
    const { a, b, space, id } = await pair();
    await a.patients.update(id, (p) => void (p.dose = 5));
    await b.patients.update(id, (p) => void (p.dose = 10));
    await exchange(a, b, space);
    await a.patients.resolve(id, "dose", 6);
    await b.patients.resolve(id, "dose", 7);
    await exchange(a, b, space);
    const listA = await conflictsWhen(a, (l) => l.length === 1);
    expect(await conflictsWhen(b, (l) => l.length === 1)).toEqual(listA);
    expect(listA[0]!.values.map((v) => v.value).sort()).toEqual([6, 7]);
  }, 30_000);

  it("equal concurrent values are no conflict, and a field not declared inbox keeps one winner", async () => {
    const { a, b, space, id } = await pair();
    await a.patients.update(id, (p) => {
      p.dose = 5;
      p.name = "Ada A";
    });
    await b.patients.update(id, (p) => {
      p.dose = 5;
      p.name = "Ada B";
    });
    await exchange(a, b, space);
    expect(await conflictsWhen(a, () => true)).toEqual([]);
    const row = (await a.patients.get(id))! as Record<string, unknown>;
    expect(row.$conflicts).toBeUndefined();
    expect(["Ada A", "Ada B"]).toContain(row.name);
    expect(await b.patients.get(id)).toEqual(row);
  }, 30_000);

  it("refuses inbox on text or counters, other rules, and resolving a field not declared inbox", async () => {
    await expect(
      openDatabase({
        name: `inbox-${n++}-bad`,
        collections: { p: { indexes: "id", text: ["notes"], conflicts: { notes: "inbox" } } },
      }),
    ).rejects.toBeInstanceOf(SchemaError);
    await expect(
      openDatabase({
        name: `inbox-${n++}-bad`,
        // @ts-expect-error: only "inbox" is a conflict rule
        collections: { p: { indexes: "id", conflicts: { dose: "ask" } } },
      }),
    ).rejects.toBeInstanceOf(SchemaError);
    const { a, id } = await pair();
    await expect(a.patients.resolve(id, "name", "Eve")).rejects.toBeInstanceOf(ValidationError);
    expect((await a.patients.get(id))!.name).toBe("Ada");
  }, 30_000);

  it(`lists at most ${MAX_CONFLICT_VALUES} values of a flooded field, the same ones on every replica`, () => {
    const base = A.change(A.init<Record<string, unknown>>({ actor: "00".repeat(16) }), (d) => {
      d.dose = 0;
    });
    const writers = Array.from({ length: MAX_CONFLICT_VALUES + 4 }, (_, i) =>
      A.change(A.clone(base, { actor: (i + 1).toString(16).padStart(32, "0") }), (d) => {
        d.dose = i + 1;
      }),
    );
    const merged = writers.reduce((acc, w) => A.merge(acc, w), A.clone(base));
    const reversed = [...writers].reverse().reduce((acc, w) => A.merge(acc, w), A.clone(base));
    const c = conflictsOf(merged, new Set(["dose"]), (v) => v);
    expect(c!.dose!.values).toHaveLength(MAX_CONFLICT_VALUES);
    expect(c!.dose!.omitted).toBe(4);
    expect(conflictsOf(reversed, new Set(["dose"]), (v) => v)).toEqual(c);
    // Latest operation first: all have the same counter here, so the greatest actor leads.
    expect(c!.dose!.values[0]!.value).toBe(MAX_CONFLICT_VALUES + 4);
  });
});

describe("conflict inbox and snapshots", () => {
  it("a snapshot's conflicted row passes the audit, and the importer lists the conflict even if the row hid it", async () => {
    const { a, b, space, id } = await pair();
    await a.patients.update(id, (p) => void (p.dose = 5));
    await b.patients.update(id, (p) => void (p.dose = 10));
    await exchange(a, b, space);
    const expected = await conflictsWhen(a, (l) => l.length === 1);
    const snap = await readSnapshot(a.replica, space);
    expect(await auditSnapshot(snap)).toBeNull();
    // A publisher that strips the listing from its rows cannot hide the conflict from the importer.
    const hidden = {
      ...snap,
      docs: snap.docs.map((d) => (d.row ? { ...d, row: withoutConflicts(d.row) } : d)),
    };
    expect(await auditSnapshot(hidden)).toBeNull();
    const c = await openDatabase({ name: `inbox-${n++}-c`, collections });
    open.push(c);
    await c.replica.addSpace({
      id: space,
      name: "Ward",
      key: new Uint8Array(32),
      createdAt: 0,
      private: false,
    });
    expect(await importSnapshot(c.replica, hidden)).toBe(true);
    expect(await conflictsWhen(c, (l) => l.length === 1)).toEqual(expected);
    expect(await c.patients.get(id)).toEqual(await a.patients.get(id));
  }, 30_000);
});

describe("changeAuthor", () => {
  it("reads the actor and first operation of a change as Automerge's decoder does", () => {
    let doc = A.init<Record<string, unknown>>({ actor: "ab".repeat(16) });
    for (let i = 0; i < 3; i++) doc = A.change(doc, (d) => void (d[`k${i}`] = "x".repeat(i * 50)));
    for (const ch of A.getAllChanges(doc)) {
      const d = A.decodeChange(ch);
      expect(changeAuthor(ch)).toEqual({ actor: d.actor, startOp: d.startOp });
    }
  });
});
