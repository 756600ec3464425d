// Type tests (issue 14 item 4): vitest type-checks this file (the "types" project of vite.config.ts) and
// never runs it. Each `@ts-expect-error` line must be a compile error, or the directive itself is one;
// every other line must compile. `npm run typecheck` checks it as well.
import { describe, expectTypeOf, test } from "vitest";
import {
  collection,
  openDatabase,
  asCounter,
  type Counter,
  type Database,
  type RecordId,
  type RowOf,
} from "../../src/index.ts";

interface Patient {
  name: string;
  ward: string;
  tags: string[];
  notes: string;
  visits: number;
  address: { city: string; line: string };
}

// Never called: the compiler reads these, vitest does not run them.
declare const id: RecordId;

describe("declared without a type parameter", () => {
  const open = () =>
    openDatabase({
      name: "clinic",
      collections: {
        patients: { indexes: "id, name, ward, [ward+name], *tags", text: ["notes"], counters: ["visits"] },
        visits: "id, patientId, date",
      },
    });
  const db = null as unknown as Awaited<ReturnType<typeof open>>;

  test("index names come from the index string", () => {
    expectTypeOf(db.patients.where)
      .parameter(0)
      .toEqualTypeOf<"id" | "name" | "ward" | "[ward+name]" | "tags" | "*tags">();
    expectTypeOf(db.visits.where).parameter(0).toEqualTypeOf<"id" | "patientId" | "date">();
    db.patients.where("ward").equals("A");
    db.patients.where("[ward+name]").equals(["A", "Ada"]);
    db.patients.orderBy("name");
    db.patients.where("ward").equals("A").or("tags");
    // @ts-expect-error "nmae" is not a declared index
    db.patients.where("nmae");
    // @ts-expect-error "notes" is a field but not an index
    db.patients.orderBy("notes");
    // @ts-expect-error or() takes declared indexes too
    db.patients.where("ward").equals("A").or("nope");
    // @ts-expect-error each collection has its own indexes
    db.visits.where("ward");
  });

  test("rows type text fields as strings and counters as numbers, other fields stay open", async () => {
    const row = await db.patients.get(id);
    expectTypeOf(row!.notes).toEqualTypeOf<string>();
    expectTypeOf(row!.visits).toEqualTypeOf<number>();
    expectTypeOf(row!.id).toEqualTypeOf<RecordId>();
    expectTypeOf(row!.anything).toBeAny();
    await db.patients.insert({ name: "Ada", ward: "A", tags: [], notes: "", visits: 0 });
    // @ts-expect-error a text field holds a string
    await db.patients.insert({ notes: 3 });
  });

  test("a declared counter is a Counter in an update draft", async () => {
    await db.patients.update(id, (p) => {
      expectTypeOf(p.visits).toEqualTypeOf<Counter>();
      p.visits.increment(1);
      p.notes = "Seen today. " + p.notes;
    });
    // @ts-expect-error assigning a number to a counter would replace it instead of merging
    await db.patients.update(id, (p) => void (p.visits = 3));
  });

  test("update functions must be synchronous", async () => {
    await db.patients.update(id, (p) => p.tags.push("x"));
    // @ts-expect-error a draft is only valid during the synchronous call
    await db.patients.update(id, async (p) => {
      p.name = "late";
    });
    await db.transact(async (tx) => {
      await tx.patients.update(id, (p) => p.visits.decrement());
      // @ts-expect-error inside a transaction too
      await tx.patients.update(id, async () => {});
    });
  });

  test("a shorthand string declares indexes only", async () => {
    const row = await db.visits.get(id);
    expectTypeOf(row!.date).toBeAny();
  });
});

describe("declared with collection<T>()", () => {
  const open = () =>
    openDatabase({
      name: "clinic",
      collections: {
        patients: collection<Patient>()({
          indexes: "id, name, ward, [ward+name], *tags, address.city",
          text: ["notes", "address.line"],
          counters: ["visits"],
        }),
      },
    });
  const db = null as unknown as Awaited<ReturnType<typeof open>>;

  test("rows are the row type plus id", async () => {
    expectTypeOf(await db.patients.get(id)).toEqualTypeOf<RowOf<Patient> | undefined>();
    expectTypeOf(await db.patients.where("ward").equals("A").toArray()).toEqualTypeOf<RowOf<Patient>[]>();
    // @ts-expect-error insert takes a Patient
    await db.patients.insert({ name: "Ada" });
  });

  test("where and orderBy take exactly the declared indexes", () => {
    db.patients.where("address.city").equals("Oslo");
    // @ts-expect-error "nmae" is not a declared index
    db.patients.where("nmae");
    // @ts-expect-error "visits" is a field but not an index
    db.patients.orderBy("visits");
  });

  test("sortBy takes fields of the row type", () => {
    db.patients.all().sortBy("visits");
    db.patients.all().sortBy("id");
    db.patients.where("ward").equals("A").sortBy("address.city");
    // @ts-expect-error "nope" is not a field of Patient
    db.patients.all().sortBy("nope");
  });

  test("counters are Counters in drafts, with no cast", async () => {
    await db.patients.update(id, (p) => p.visits.increment());
    await db.patients.update(id, (p) => asCounter(p.visits).increment(2));
  });

  test("the declaration is checked against the row type", () => {
    // @ts-expect-error counters must name number fields
    collection<Patient>()({ indexes: "id", counters: ["nope"] });
    // @ts-expect-error a text path must be a string field, not a number
    collection<Patient>()({ indexes: "id", text: ["visits"] });
    // @ts-expect-error ...nor an array
    collection<Patient>()({ indexes: "id", text: ["tags"] });
    // @ts-expect-error counters cannot be strings
    collection<Patient>()({ indexes: "id", counters: ["name"] });
    // @ts-expect-error an index must name fields of the row type
    collection<Patient>()({ indexes: "id, nmae" });
    // @ts-expect-error in a compound index too
    collection<Patient>()({ indexes: "id, [ward+nmae]" });
    // @ts-expect-error and in the shorthand
    collection<Patient>()("id, name, nope");
    collection<Patient>()("id, name, *tags, [ward+name]");
    collection<Patient>()({ indexes: "id, address.city", text: ["address.line"], counters: ["visits"] });
  });
});

describe("row types given as the type parameter", () => {
  const db = null as unknown as Database<{ patients: Patient }>;

  test("opening with a type parameter gives Database<M>", () => {
    const open = () =>
      openDatabase<{ patients: Patient }>({
        name: "clinic",
        collections: { patients: { indexes: "id, name, ward", text: ["notes"] } },
      });
    expectTypeOf(open).returns.resolves.toEqualTypeOf<Database<{ patients: Patient }>>();
  });

  test("where takes id, fields, *arrays and compounds of fields", () => {
    db.patients.where("ward");
    db.patients.where("address.city");
    db.patients.where("*tags");
    db.patients.where("[ward+name]");
    // @ts-expect-error "nmae" is not a field of Patient
    db.patients.where("nmae");
    // @ts-expect-error nor the first field of a compound index (only the first is checked here)
    db.patients.where("[nmae+ward]");
    // @ts-expect-error *x needs an array field
    db.patients.where("*ward");
  });

  test("sortBy and update are checked", async () => {
    await db.patients.all().sortBy("name");
    // @ts-expect-error "nope" is not a field of Patient
    await db.patients.all().sortBy("nope");
    // Counters are not known from a row type alone: asCounter types one, without a cast.
    await db.patients.update(id, (p) => asCounter(p.visits).increment());
    // @ts-expect-error no async update function
    await db.patients.update(id, async (p) => void (p.name = "x"));
  });
});

describe("untyped code keeps compiling", () => {
  test("a declaration in a variable (not a literal) gives open rows and any index name", async () => {
    const collections = { patients: { indexes: "id, name", text: ["notes"] } };
    const db = await openDatabase({ name: "x", collections });
    db.patients.where("anything");
    const row = await db.patients.get(id);
    expectTypeOf(row!.whatever).toBeAny();
    const typed: Database<{ patients: { name: string } }> = await openDatabase<{
      patients: { name: string };
    }>({
      name: "y",
      collections,
    });
    expectTypeOf(typed.patients.name).toEqualTypeOf<string>();
  });

  test("db.collection(name) is typed like the property", () => {
    const db = null as unknown as Database<{ patients: Patient }>;
    expectTypeOf(db.collection("patients")).toEqualTypeOf(db.patients);
    // @ts-expect-error no such collection
    db.collection("nope");
  });
});

describe("bounded counters", () => {
  interface Site {
    name: string;
    doses: number;
    visits: number;
  }
  const open = () =>
    openDatabase({
      name: "stock",
      collections: {
        sites: collection<Site>()({ indexes: "id, name", counters: { doses: { min: 0 }, visits: true } }),
      },
    });
  const db = null as unknown as Awaited<ReturnType<typeof open>>;

  test("a bounded counter reads as a number in a draft and cannot be assigned; take and add change it", async () => {
    await db.sites.update(id, (s) => {
      expectTypeOf(s.doses).toEqualTypeOf<number>();
      s.visits.increment();
      s.name = "North";
    });
    await db.sites.update(id, (s) => {
      // @ts-expect-error a bounded counter changes by take and add only
      s.doses = 3;
    });
    await db.sites.take(id, "doses", 1);
    await db.sites.add(id, "doses", 5);
    await db.sites.insert({ name: "South", doses: 10, visits: 0 });
  });
});
