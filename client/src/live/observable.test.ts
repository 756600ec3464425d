import { describe, expect, it } from "vitest";
import { openDatabase } from "../database.ts";
import type { Observable } from "./observable.ts";

type P = { name: string; ward: string };
type V = { patientId: string; date: string };
const collections = { patients: "id, name, ward", visits: "id, patientId, date" };
let n = 0;

/** Subscribes and records every emission; `next(k)` resolves once k results have arrived. */
function record<T>(obs: Observable<T>) {
  const values: T[] = [];
  const waiters: { k: number; resolve: () => void }[] = [];
  const sub = obs.subscribe(
    (v) => {
      values.push(v);
      for (const w of waiters.splice(0))
        if (values.length >= w.k) w.resolve();
        else waiters.push(w);
    },
    (e) => {
      throw e;
    },
  );
  return {
    values,
    sub,
    next: (k: number) =>
      new Promise<void>((resolve) => (values.length >= k ? resolve() : waiters.push({ k, resolve }))),
  };
}

describe("live queries", () => {
  it("re-run for a commit they read and not for one to another collection", async () => {
    const db = await openDatabase<{ patients: P; visits: V }>({ name: `live-${n++}`, collections });
    let runs = 0;
    const r = record(
      db.patients.live((c) => {
        runs++;
        return c.where("ward").equals("A");
      }),
    );
    await r.next(1);
    expect(r.values[0]).toEqual([]);
    const runsBefore = runs;
    await db.visits.insert({ patientId: "p", date: "2026-11-25" });
    // A later commit the query does read: its result is the next emission, so no re-run happened between.
    await db.patients.insert({ name: "Ada", ward: "A" });
    await r.next(2);
    expect(r.values.length).toBe(2);
    expect(r.values[1]!.map((p) => p.name)).toEqual(["Ada"]);
    // Patched with the one changed row: the query did not run again (see patchingLive).
    expect(runs).toBe(runsBefore);
    r.sub.unsubscribe();
    await db.close();
  });

  it("re-run for commits made through another connection (another tab) and for applied remote commits", async () => {
    const name = `live-${n++}`;
    const tab1 = await openDatabase<{ patients: P; visits: V }>({ name, collections });
    const tab2 = await openDatabase<{ patients: P; visits: V }>({ name, collections });
    const r = record(tab1.patients.live((c) => c.orderBy("name")));
    await r.next(1);
    await tab2.patients.insert({ name: "From tab 2", ward: "B" });
    await r.next(2);
    expect(r.values[1]!.map((p) => p.name)).toEqual(["From tab 2"]);

    const remote = await openDatabase<{ patients: P; visits: V }>({ name: `live-${n++}`, collections });
    const space = await remote.createSpace({ name: "S" });
    await tab1.replica.addSpace({
      id: space.id,
      name: "S",
      key: new Uint8Array(32),
      createdAt: 0,
      private: false,
    });
    await remote.patients.insert({ name: "Remote", ward: "C" }, { space });
    await tab1.applyCommits(await remote.exportCommits({}, { spaces: [space.id] }));
    await r.next(3);
    expect(r.values[2]!.map((p) => p.name)).toEqual(["From tab 2", "Remote"]);
    r.sub.unsubscribe();
    await Promise.all([tab1.close(), tab2.close(), remote.close()]);
  });
});
