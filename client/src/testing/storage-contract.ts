import type { openDatabase as OpenDatabase } from "../database.ts";

/** What a contract case gets: the `openDatabase` of the build under test and a fresh database name. */
export interface StorageContractContext {
  openDatabase: typeof OpenDatabase;
  dbName: string;
}

/** One case of the storage contract. */
export interface StorageContractCase {
  name: string;
  run(ctx: StorageContractContext): Promise<void>;
}

// No runtime imports: Playwright specs import this file in Node for the case names, and the harness page
// runs the cases against real IndexedDB with the bundled client.

function check(cond: unknown, message: string): asserts cond {
  if (!cond) throw new Error(`storage contract: ${message}`);
}

function same(actual: unknown, expected: unknown, message: string): void {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  if (a !== e) throw new Error(`storage contract: ${message}\n  expected ${e}\n  got      ${a}`);
}

async function rejects(p: Promise<unknown>, code: string, message: string): Promise<void> {
  try {
    await p;
  } catch (e) {
    same((e as { code?: string }).code, code, message);
    return;
  }
  throw new Error(`storage contract: ${message}: did not throw`);
}

const patients = {
  indexes: "id, name, ward, [ward+name], *tags, age",
  text: ["notes"],
  counters: ["visits"],
};
const visits = "id, patientId, date";

type P = { name: string; ward: string; tags: string[]; age: number; notes: string; visits?: number };

/**
 * The storage contract: what every IndexedDB implementation Shoal runs on must give. It runs on
 * fake-indexeddb in unit tests and in real Chromium through Playwright.
 */
export const storageContractCases: StorageContractCase[] = [
  {
    name: "insert, get, update, delete and counters",
    async run({ openDatabase, dbName }) {
      const db = await openDatabase<{ patients: P }>({ name: dbName, collections: { patients } });
      const id = await db.patients.insert({
        name: "Ada",
        ward: "A",
        tags: ["x"],
        age: 36,
        notes: "Hi",
        visits: 0,
      });
      same(
        await db.patients.get(id),
        { id, age: 36, name: "Ada", notes: "Hi", tags: ["x"], visits: 0, ward: "A" },
        "row after insert",
      );
      await db.patients.update(id, (p) => {
        p.name = "Ada L.";
        p.notes = "Hi there";
        (p.visits as unknown as { increment(n: number): void }).increment(3);
      });
      const row = await db.patients.get(id);
      same([row?.name, row?.notes, row?.visits], ["Ada L.", "Hi there", 3], "row after update");
      await db.patients.delete(id);
      check((await db.patients.get(id)) === undefined, "deleted record still readable");
      await rejects(
        db.patients.update(id, (p) => void (p.name = "x")),
        "NotFound",
        "update after delete",
      );
      await db.close();
    },
  },
  {
    name: "a transaction that throws half-way leaves nothing behind",
    async run({ openDatabase, dbName }) {
      const db = await openDatabase<{ patients: P; visits: { patientId: string; date: string } }>({
        name: dbName,
        collections: { patients, visits },
      });
      const keep = await db.patients.insert({ name: "Keep", ward: "A", tags: [], age: 1, notes: "" });
      const before = await db.vector();
      await db
        .transact(async (tx) => {
          const p = await tx.patients.insert({ name: "Ghost", ward: "B", tags: [], age: 2, notes: "" });
          await tx.visits.insert({ patientId: p, date: "2026-11-25" });
          await tx.patients.update(keep, (d) => void (d.name = "Changed"));
          throw new Error("boom");
        })
        .then(
          () => check(false, "transaction should have thrown"),
          (e: Error) => same(e.message, "boom", "the app's error comes through"),
        );
      same(await db.patients.count(), 1, "no ghost patient");
      same(await db.visits.count(), 0, "no ghost visit");
      same((await db.patients.get(keep))?.name, "Keep", "update rolled back");
      same(await db.vector(), before, "no sequence number consumed");
      same((await db.patients.history(keep)).length, 1, "no commit logged");
      await db.close();
    },
  },
  {
    name: "one transaction across records is one commit",
    async run({ openDatabase, dbName }) {
      const db = await openDatabase<{ patients: P; visits: { patientId: string; date: string } }>({
        name: dbName,
        collections: { patients, visits },
      });
      const [p, v] = await db.transact(async (tx) => {
        const p = await tx.patients.insert({ name: "Ada", ward: "A", tags: [], age: 1, notes: "" });
        const v = await tx.visits.insert({ patientId: p, date: "2026-11-25" });
        return [p, v] as const;
      });
      const hp = await db.patients.history(p);
      const hv = await db.visits.history(v);
      same(hp.length, 1, "one commit for the patient");
      same(hp[0]!.commit, hv[0]!.commit, "patient and visit share the commit");
      const commits = await db.exportCommits({});
      same(commits.length, 1, "one commit exported");
      same(commits[0]!.changes.length, 2, "the commit carries both records");
      same(commits[0]!.seq, 1, "first sequence number");
      await db.close();
    },
  },
  {
    name: "queries: equals, anyOf, between, startsWith, above, below, compound, multi-entry, order, paging",
    async run({ openDatabase, dbName }) {
      const db = await openDatabase<{ patients: P }>({ name: dbName, collections: { patients } });
      const rows: P[] = [
        { name: "Ada", ward: "A", tags: ["diabetic", "allergy"], age: 36, notes: "" },
        { name: "Alan", ward: "B", tags: ["allergy"], age: 41, notes: "" },
        { name: "Grace", ward: "A", tags: [], age: 85, notes: "" },
        { name: "Linus", ward: "C", tags: ["diabetic"], age: 55, notes: "" },
        { name: "Barbara", ward: "B", tags: [], age: 29, notes: "" },
      ];
      const ids = await db.transact(async (tx) => Promise.all(rows.map((r) => tx.patients.insert(r))));
      const names = (rs: { name: string }[]) => rs.map((r) => r.name);
      same(names(await db.patients.where("ward").equals("A").sortBy("name")), ["Ada", "Grace"], "equals");
      same(
        names(await db.patients.where("ward").anyOf(["B", "C"]).sortBy("name")),
        ["Alan", "Barbara", "Linus"],
        "anyOf",
      );
      same(
        names(await db.patients.where("age").between(30, 55).sortBy("age")),
        ["Ada", "Alan"],
        "between excludes upper",
      );
      same(
        names(await db.patients.where("age").between(30, 55, true, true).sortBy("age")),
        ["Ada", "Alan", "Linus"],
        "between includes upper",
      );
      same(names(await db.patients.where("name").startsWith("A").toArray()), ["Ada", "Alan"], "startsWith");
      same(names(await db.patients.where("age").above(55).toArray()), ["Grace"], "above");
      same(
        names(await db.patients.where("age").belowOrEqual(36).toArray()),
        ["Barbara", "Ada"],
        "belowOrEqual",
      );
      same(
        names(await db.patients.where("[ward+name]").equals(["B", "Barbara"]).toArray()),
        ["Barbara"],
        "compound equals",
      );
      same(
        names(await db.patients.where("[ward+name]").between(["A", ""], ["A", "\uffff"]).toArray()),
        ["Ada", "Grace"],
        "compound range",
      );
      same(
        names(await db.patients.where("tags").equals("diabetic").sortBy("name")),
        ["Ada", "Linus"],
        "multi-entry",
      );
      same(
        names(await db.patients.orderBy("age").offset(1).limit(2).toArray()),
        ["Ada", "Alan"],
        "orderBy offset limit",
      );
      same(names(await db.patients.orderBy("name").reverse().limit(1).toArray()), ["Linus"], "reverse");
      same(await db.patients.where("ward").equals("B").count(), 2, "count");
      same(names(await db.patients.filter((r) => r.age > 50).sortBy("name")), ["Grace", "Linus"], "filter");
      same(
        names(
          await db.patients
            .where("ward")
            .equals("A")
            .filter((r) => r.age > 50)
            .toArray(),
        ),
        ["Grace"],
        "where + filter",
      );
      await db.patients.delete(ids[0]!);
      same(
        names(await db.patients.where("tags").equals("diabetic").toArray()),
        ["Linus"],
        "tombstone gone from multi-entry index",
      );
      same(await db.patients.count(), 4, "tombstone not counted");
      await db.close();
    },
  },
  {
    name: "close and reopen keeps rows, history and the version vector",
    async run({ openDatabase, dbName }) {
      const open = () => openDatabase<{ patients: P }>({ name: dbName, collections: { patients } });
      const db = await open();
      const id = await db.patients.insert({ name: "Ada", ward: "A", tags: [], age: 1, notes: "a" });
      await db.patients.update(id, (p) => void (p.notes = "ab"));
      const device = db.deviceId;
      const vector = await db.vector();
      await db.close();
      const again = await open();
      same(again.deviceId, device, "same device id");
      same((await again.patients.get(id))?.notes, "ab", "row kept");
      same((await again.patients.history(id)).length, 2, "history kept");
      same(await again.vector(), vector, "vector kept");
      await again.patients.update(id, (p) => void (p.notes = "abc"));
      same(
        (await again.patients.history(id)).map((h) => h.seq),
        [1, 2, 3],
        "sequence continues",
      );
      await again.close();
    },
  },
  {
    name: "a schema upgrade adding a collection and an index keeps all data",
    async run({ openDatabase, dbName }) {
      const v1 = await openDatabase<{ patients: P }>({ name: dbName, collections: { patients: "id, name" } });
      const id = await v1.patients.insert({ name: "Ada", ward: "A", tags: ["t"], age: 36, notes: "" });
      await v1.close();
      const v2 = await openDatabase<{ patients: P; visits: { patientId: string; date: string } }>({
        name: dbName,
        collections: { patients: "id, name, ward", visits },
      });
      same((await v2.patients.get(id))?.name, "Ada", "row kept");
      same(
        (await v2.patients.where("ward").equals("A").toArray()).map((r) => r.id),
        [id],
        "new index covers old rows",
      );
      await v2.visits.insert({ patientId: id, date: "2026-11-25" });
      same(await v2.visits.count(), 1, "new collection usable");
      same((await v2.patients.history(id)).length, 1, "history kept");
      await v2.close();
      await rejects(
        openDatabase({ name: dbName, collections: { patients: "id, name", visits } }),
        "SchemaError",
        "removing an index",
      );
      await rejects(
        openDatabase({ name: dbName, collections: { patients: "id, name, *ward", visits } }),
        "SchemaError",
        "changing an index kind",
      );
      await rejects(
        openDatabase({ name: dbName, collections: { patients: "id, name, ward" } }),
        "SchemaError",
        "dropping a collection",
      );
      const v3 = await openDatabase({ name: dbName, collections: { patients: "id, name, ward", visits } });
      same(await v3.patients.count(), 1, "a refused open changed nothing");
      await v3.close();
    },
  },
  {
    name: "two connections committing at once take every sequence number once, with no gap",
    async run({ openDatabase, dbName }) {
      const a = await openDatabase<{ patients: P }>({ name: dbName, collections: { patients } });
      const b = await openDatabase<{ patients: P }>({ name: dbName, collections: { patients } });
      same(a.deviceId, b.deviceId, "connections share the device id");
      const one = (db: typeof a, i: number) =>
        db.patients.insert({ name: `P${i}`, ward: "A", tags: [], age: i, notes: "" });
      await Promise.all(Array.from({ length: 40 }, (_, i) => one(i % 2 === 0 ? a : b, i)));
      const commits = await a.exportCommits({});
      const seqs = commits.map((c) => c.seq).sort((x, y) => x - y);
      same(
        seqs,
        Array.from({ length: 40 }, (_, i) => i + 1),
        "sequences 1..40",
      );
      same((await a.vector())[a.privateSpace]?.[a.deviceId], 40, "vector at 40");
      await a.close();
      await b.close();
    },
  },
  {
    name: "history lists commits and readAt returns past versions",
    async run({ openDatabase, dbName }) {
      const db = await openDatabase<{ patients: P }>({ name: dbName, collections: { patients } });
      const id = await db.patients.insert({ name: "Ada", ward: "A", tags: [], age: 36, notes: "" });
      await db.patients.update(id, (p) => void (p.ward = "B"));
      await db.patients.update(id, (p) => {
        p.notes = "Allergic to penicillin";
        p.age = 37;
      });
      const h = await db.patients.history(id);
      same(
        h.map((e) => e.op),
        ["insert", "update", "update"],
        "ops",
      );
      same(
        h.map((e) => e.paths),
        [["age", "name", "notes", "tags", "ward"], ["ward"], ["age", "notes"]],
        "paths",
      );
      check(
        h.every((e) => e.device === db.deviceId && typeof e.at === "number"),
        "device and time",
      );
      const at = await Promise.all(h.map((e) => db.patients.readAt(id, e.commit)));
      same(
        at.map((r) => [r.ward, r.age, r.notes]),
        [
          ["A", 36, ""],
          ["B", 36, ""],
          ["B", 37, "Allergic to penicillin"],
        ],
        "past versions",
      );
      await rejects(db.patients.readAt(id, "nope" as never), "NotFound", "unknown commit");
      await db.close();
    },
  },
  {
    name: "two replicas exchanging commits converge, text merges, delete wins",
    async run({ openDatabase, dbName }) {
      const a = await openDatabase<{ patients: P }>({ name: `${dbName}-a`, collections: { patients } });
      const b = await openDatabase<{ patients: P }>({ name: `${dbName}-b`, collections: { patients } });
      const shared = await a.createSpace({ name: "Clinic" });
      // b learns the space the way join will do it; here by hand through the internal table.
      await b.replica.addSpace({
        id: shared.id,
        name: shared.name,
        key: new Uint8Array(32),
        createdAt: 0,
        private: false,
      });
      const id = await a.patients.insert(
        { name: "Ada", ward: "A", tags: [], age: 36, notes: "Note." },
        { space: shared },
      );
      const gone = await a.patients.insert(
        { name: "Gone", ward: "A", tags: [], age: 1, notes: "" },
        { space: shared },
      );
      await b.applyCommits(await a.exportCommits({}, { spaces: [shared.id] }));
      await a.patients.update(id, (p) => {
        p.ward = "B";
        p.notes = "Start. Note.";
      });
      await b.patients.update(id, (p) => {
        p.age = 37;
        p.notes = "Note. End.";
      });
      await a.patients.delete(gone);
      await b.patients.update(gone, (p) => void (p.name = "Edited"));
      const va = await a.vector([shared.id]);
      const vb = await b.vector([shared.id]);
      await b.applyCommits(await a.exportCommits(vb, { spaces: [shared.id] }));
      await a.applyCommits(await b.exportCommits(va, { spaces: [shared.id] }));
      const ra = await a.patients.get(id);
      const rb = await b.patients.get(id);
      same(ra, rb, "rows equal");
      same([ra?.ward, ra?.age, ra?.notes], ["B", 37, "Start. Note. End."], "both edits kept");
      check(
        (await a.patients.get(gone)) === undefined && (await b.patients.get(gone)) === undefined,
        "delete wins",
      );
      same(await a.vector([shared.id]), await b.vector([shared.id]), "vectors equal");
      await a.close();
      await b.close();
    },
  },
];
