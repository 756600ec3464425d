import * as A from "@automerge/automerge";
import { afterEach, describe, expect, it } from "vitest";
import { openDatabase, type DatabaseFromDeclarations } from "../database.ts";
import { InsufficientRights, SchemaError, ValidationError } from "../errors.ts";
import { collection } from "./collection-declaration.ts";
import { parseCollectionSpec } from "./collection-spec.ts";
import { ESCROW_EDIT, type EscrowEdit } from "./escrow-ops.ts";
import { escrowProblem } from "./escrow-check.ts";
import { initialEscrow } from "./escrow.ts";
import { waitFor } from "../../test/wait-for.ts";
import type { SpaceId } from "../types.ts";

type Site = { name: string; doses: number; visits: number };
const collections = {
  sites: collection<Site>()({ indexes: "id, name", counters: { doses: { min: 0 }, visits: true } }),
};
type Db = DatabaseFromDeclarations<typeof collections>;
let n = 0;
const open: Db[] = [];

afterEach(async () => {
  for (const db of open.splice(0)) await db.close();
});

async function one(): Promise<Db> {
  const db = await openDatabase({ name: `escrow-${n++}`, collections });
  open.push(db);
  return db;
}

/** Two replicas of one shared space, and a site with `doses` both hold. */
async function pair(doses: number): Promise<{ a: Db; b: Db; space: SpaceId; id: string }> {
  const a = await one();
  const b = await one();
  const space = (await a.createSpace({ name: "Region" })).id;
  await b.replica.addSpace({
    id: space,
    name: "Region",
    key: new Uint8Array(32),
    createdAt: 0,
    private: false,
  });
  const id = await a.sites.insert({ name: "North", doses, visits: 0 }, { space });
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

/** Resolves once `db`'s rights on the site pass `ok` (grants happen after commits apply). */
function rightsWhen(db: Db, id: string, ok: (held: number) => boolean) {
  return waitFor(
    db.sites.live(() => db.sites.rights(id, "doses")),
    (r) => ok(r.held),
    20_000,
    "rights",
  );
}

/** Writes an escrow change no honest `take` would make (the local side trusts itself). */
async function forge(db: Db, id: string, fn: (doc: Record<string, unknown>) => void): Promise<void> {
  await db.transact(async (tx) => {
    const c = tx.collection("sites") as unknown as { [ESCROW_EDIT]: EscrowEdit };
    await c[ESCROW_EDIT](id, "doses", fn);
  });
}

type Rows = Record<string, Record<string, A.Counter & { increment(n: number): void }>>;
const rowsOf = (doc: Record<string, unknown>) => (doc.$escrow as Record<string, { rows: Rows }>).doses!.rows;

describe("bounded counter declarations", () => {
  it("parses the object form: bounded with a min, unbounded with true or {}", () => {
    const spec = parseCollectionSpec("s", { indexes: "id", counters: { a: { min: 0 }, b: true, c: {} } });
    expect([...spec.counters].sort()).toEqual(["b", "c"]);
    expect(spec.bounded?.get("a")).toEqual({ min: 0 });
    expect(parseCollectionSpec("s", { indexes: "id", counters: ["x"] }).bounded).toBeUndefined();
  });

  it("refuses a max, a dotted path, and a min that is not a whole number", () => {
    const decl = (rule: unknown, f = "a") => ({ indexes: "id", counters: { [f]: rule } }) as never;
    expect(() => parseCollectionSpec("s", decl({ min: 0, max: 9 }))).toThrow(SchemaError);
    expect(() => parseCollectionSpec("s", decl({ min: 0 }, "a.b"))).toThrow(SchemaError);
    expect(() => parseCollectionSpec("s", decl({ min: 0.5 }))).toThrow(SchemaError);
    expect(() => parseCollectionSpec("s", decl("x"))).toThrow(SchemaError);
  });
});

describe("bounded counters on one device", () => {
  it("reads as a number, takes within the creator's rights, refuses beyond them at once", async () => {
    const db = await one();
    const id = await db.sites.insert({ name: "North", doses: 10, visits: 0 });
    expect((await db.sites.get(id))?.doses).toBe(10);
    expect(await db.sites.rights(id, "doses")).toEqual({ value: 10, held: 10, total: 10, wanted: 0 });
    await db.sites.take(id, "doses", 4);
    await db.sites.add(id, "doses", 2);
    expect(await db.sites.rights(id, "doses")).toMatchObject({ value: 8, held: 8, total: 8 });
    const err = await db.sites.take(id, "doses", 9).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InsufficientRights);
    expect(err).toMatchObject({ code: "InsufficientRights", held: 8, total: 8, wanted: 9 });
    expect((await db.sites.get(id))?.doses).toBe(8);
    // Unbounded counters in the same collection still merge by sum through update drafts.
    await db.sites.update(id, (s) => s.visits.increment());
    expect((await db.sites.get(id))?.visits).toBe(1);
  });

  it("refuses assignment in update, an insert below the bound, and a bad amount", async () => {
    const db = await one();
    const id = await db.sites.insert({ name: "North", doses: 3, visits: 0 });
    await expect(
      db.sites.update(id, (s) => {
        (s as Record<string, unknown>).doses = 100;
      }),
    ).rejects.toThrow(ValidationError);
    await expect(db.sites.insert({ name: "South", doses: -1, visits: 0 })).rejects.toThrow(ValidationError);
    await expect(db.sites.take(id, "doses", 0)).rejects.toThrow(ValidationError);
    await expect(db.sites.take(id, "visits" as "doses", 1)).rejects.toThrow(ValidationError);
    expect((await db.sites.get(id))?.doses).toBe(3);
  });

  it("starts a field left out at its min", async () => {
    const db = await one();
    const id = await db.sites.insert({ name: "North", visits: 0 } as Site);
    expect(await db.sites.rights(id, "doses")).toMatchObject({ value: 0, held: 0, total: 0 });
  });
});

describe("bounded counters across devices", () => {
  it("a device short of rights asks; the holder grants when they sync; the asker can then take", async () => {
    const { a, b, space, id } = await pair(10);
    const err = await b.sites.take(id, "doses", 3).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "InsufficientRights", held: 0, total: 10 });
    expect(await b.sites.rights(id, "doses")).toMatchObject({ held: 0, wanted: 3 });
    await exchange(a, b, space); // a receives the request and grants it by itself
    await rightsWhen(a, id, (held) => held === 7);
    await exchange(a, b, space);
    expect(await b.sites.rights(id, "doses")).toMatchObject({ held: 3, wanted: 0, value: 10 });
    await b.sites.take(id, "doses", 3);
    await exchange(a, b, space);
    expect((await a.sites.get(id))?.doses).toBe(7);
    expect((await b.sites.get(id))?.doses).toBe(7);
  });

  it("two offline devices each trying to take more than half never take the value below its min", async () => {
    const { a, b, space, id } = await pair(10);
    await b.sites.requestRights(id, "doses", 5);
    await exchange(a, b, space);
    await rightsWhen(a, id, (held) => held === 5);
    await exchange(a, b, space);
    // Offline: each takes what it can of 6.
    const results = await Promise.all(
      [a, b].map((db) =>
        db.sites.take(id, "doses", 6).then(
          () => "ok",
          (e: unknown) => e,
        ),
      ),
    );
    for (const r of results) expect(r).toMatchObject({ code: "InsufficientRights", held: 5 });
    await a.sites.take(id, "doses", 5);
    await b.sites.take(id, "doses", 5);
    await expect(b.sites.take(id, "doses", 1)).rejects.toThrow(InsufficientRights);
    await exchange(a, b, space);
    for (const db of [a, b]) expect(await db.sites.rights(id, "doses")).toMatchObject({ value: 0, total: 0 });
  });
});

describe("bounded counters across the tabs of one device", () => {
  it("two tabs taking at once never spend the same rights (the Web Lock, faked in Node)", async () => {
    // A FIFO lock per name, as `navigator.locks.request(name, callback)` gives in a browser.
    const tails = new Map<string, Promise<unknown>>();
    const locks = {
      request<T>(name: string, cb: () => Promise<T>): Promise<T> {
        const run = (tails.get(name) ?? Promise.resolve()).then(cb, cb);
        tails.set(
          name,
          run.catch(() => undefined),
        );
        return run;
      },
    };
    Object.defineProperty(globalThis, "navigator", { value: { locks }, configurable: true });
    try {
      const name = `escrow-tabs-${n++}`;
      const tab1 = await openDatabase({ name, collections });
      open.push(tab1);
      const tab2 = await openDatabase({ name, collections });
      open.push(tab2);
      expect(tab2.deviceId).toBe(tab1.deviceId);
      const id = await tab1.sites.insert({ name: "North", doses: 10, visits: 0 });
      const outcomes = await Promise.all(
        [tab1, tab2].map((db) =>
          db.sites.take(id, "doses", 6).then(
            () => "ok",
            (e: unknown) => (e as { code?: string }).code,
          ),
        ),
      );
      expect(outcomes.sort()).toEqual(["InsufficientRights", "ok"]);
      for (const db of [tab1, tab2]) expect((await db.sites.get(id))?.doses).toBe(4);
    } finally {
      Reflect.deleteProperty(globalThis, "navigator");
    }
  });
});

describe("receivers check escrow writes (a hostile device)", () => {
  const cases: [string, (doc: Record<string, unknown>, mine: string, theirs: string) => void][] = [
    [
      "takes without rights",
      (doc, mine) => {
        rowsOf(doc)[mine] = {
          inc: new A.Counter(0),
          dec: new A.Counter(4),
          want: new A.Counter(0),
          given: {},
        } as never;
      },
    ],
    ["writes another device's row", (doc, _mine, theirs) => rowsOf(doc)[theirs]!.dec!.increment(5)],
    [
      "lowers a counter of its own row",
      (doc, mine) => {
        rowsOf(doc)[mine] = {
          inc: new A.Counter(0),
          dec: new A.Counter(0),
          want: new A.Counter(0),
          given: {},
        } as never;
        rowsOf(doc)[mine]!.inc!.increment(-3);
      },
    ],
    [
      "gives rights it does not hold",
      (doc, mine, theirs) => {
        rowsOf(doc)[mine] = {
          inc: new A.Counter(0),
          dec: new A.Counter(0),
          want: new A.Counter(0),
          given: { [theirs]: new A.Counter(2) },
        } as never;
      },
    ],
    [
      "sets the bounded field itself",
      (doc) => {
        doc.doses = 100;
      },
    ],
    [
      "makes the escrow again on a record that has one",
      (doc, mine) => {
        const row = { inc: new A.Counter(100), dec: new A.Counter(0), want: new A.Counter(0), given: {} };
        doc.$escrow = { doses: { min: 0, rows: { [mine]: row } } };
      },
    ],
    [
      "changes the bound",
      (doc) => {
        (doc.$escrow as Record<string, Record<string, unknown>>).doses!.min = -100;
      },
    ],
  ];
  for (const [what, fn] of cases) {
    it(`quarantines alone a commit that ${what}`, async () => {
      const { a, b, space, id } = await pair(10);
      const other = await b.sites.insert({ name: "South", doses: 2, visits: 0 }, { space });
      await forge(b, id, (doc) => fn(doc, b.deviceId, a.deviceId));
      await b.sites.take(other, "doses", 1);
      await exchange(a, b, space);
      expect((await a.quarantine()).map((q) => q.reason)).toEqual(["escrow"]);
      expect(await a.sites.rights(id, "doses")).toMatchObject({ value: 10, held: 10, total: 10 });
      // The device's other commits, on another record, still apply.
      expect((await a.sites.get(other))?.doses).toBe(1);
    });
  }
});

describe("escrowProblem on a record's creation", () => {
  const spec = parseCollectionSpec("sites", { indexes: "id", counters: { doses: { min: 0 } } });
  const device = "ab".repeat(16);
  const create = (escrow: Record<string, unknown>) => {
    const doc = A.change(A.init<Record<string, unknown>>({ actor: "cd".repeat(16) }), (d) => {
      d.name = "North";
      d.$escrow = escrow;
    });
    return { doc, changes: [A.getLastLocalChange(doc)!] };
  };

  it("accepts the creation an honest insert makes, and refuses one with another bound", () => {
    const honest = create(initialEscrow(spec, { doses: 7 }, device).escrow);
    expect(escrowProblem(spec, device, "insert", honest.changes, honest.doc)).toBeNull();
    const lower = create({ doses: { min: -5, rows: {} } });
    expect(escrowProblem(spec, device, "insert", lower.changes, lower.doc)?.message).toMatch(/bound/);
    // The same bytes as an update of a record that exists: the escrow is made only by a creation.
    expect(escrowProblem(spec, device, "update", honest.changes, honest.doc)).not.toBeNull();
    // Rights held by another device than the author's: its row is not the author's to write.
    const other = create(initialEscrow(spec, { doses: 7 }, "ef".repeat(16)).escrow);
    expect(escrowProblem(spec, device, "insert", other.changes, other.doc)?.message).toMatch(
      /another device/,
    );
  });

  it("refuses a creation JSON that sets the bounded field as a plain value", () => {
    const problem = escrowProblem(spec, device, "insert", [], null, { json: { doses: -3 } });
    expect(problem?.reason).toBe("escrow");
  });
});
