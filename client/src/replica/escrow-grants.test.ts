// The grant pass at start (`startEscrowGrants`' sweep): a request for rights that this device stored but
// never answered (its grant failed, or it closed or crashed first) is answered when the database opens
// again, without waiting for another commit on the record.
import { afterEach, describe, expect, it, vi } from "vitest";
import { openDatabase, type DatabaseFromDeclarations } from "../database.ts";
import { collection } from "./collection-declaration.ts";
import { waitFor } from "../../test/wait-for.ts";
import type { SpaceId } from "../types.ts";

// The grant refuses while `refusing` is set, counting its calls: the state of a device whose grant
// pass failed (a storage error, the database closing) after the request was stored.
const grants = vi.hoisted(() => ({ refusing: false, refused: 0 }));
vi.mock("./escrow-ops.ts", async (importActual) => {
  const actual = await importActual<typeof import("./escrow-ops.ts")>();
  return {
    ...actual,
    grantAsked: (...args: Parameters<typeof actual.grantAsked>) => {
      if (!grants.refusing) return actual.grantAsked(...args);
      grants.refused++;
      return Promise.reject(new Error("storage failed (test)"));
    },
  };
});

type Site = { name: string; doses: number };
const collections = { sites: collection<Site>()({ indexes: "id, name", counters: { doses: { min: 0 } } }) };
type Db = DatabaseFromDeclarations<typeof collections>;
const open: Db[] = [];

afterEach(async () => {
  grants.refusing = false;
  for (const db of open.splice(0)) await db.close();
});

async function opened(name: string): Promise<Db> {
  const db = await openDatabase({ name, collections });
  open.push(db);
  return db;
}

/** `to` receives the commits of `from` that it lacks. */
async function send(from: Db, to: Db, space: SpaceId): Promise<void> {
  await to.applyCommits(await from.exportCommits(await to.vector([space]), { spaces: [space] }));
}

describe("escrow grants at start", () => {
  it("answers a request stored but never granted when the database opens again", async () => {
    const a = await opened("grants-a");
    const b = await opened("grants-b");
    const space = (await a.createSpace({ name: "Region" })).id;
    await b.replica.addSpace({
      id: space,
      name: "Region",
      key: new Uint8Array(32),
      createdAt: 0,
      private: false,
    });
    const id = await a.sites.insert({ name: "North", doses: 10 }, { space });
    await send(a, b, space);
    await b.sites.requestRights(id, "doses", 4);

    grants.refusing = true;
    await send(b, a, space);
    // The pass after the commit tried and failed; the request is stored, unanswered.
    await waitFor(
      a.sites.live(() => a.sites.rights(id, "doses")),
      () => grants.refused > 0,
      20_000,
      "a refused grant",
    );
    expect(await a.sites.rights(id, "doses")).toMatchObject({ held: 10, total: 10 });
    await a.close();
    open.splice(open.indexOf(a), 1);
    grants.refusing = false;

    const again = await opened("grants-a");
    await waitFor(
      again.sites.live(() => again.sites.rights(id, "doses")),
      (r) => r.held === 6,
      20_000,
      "granted at start",
    );
    await send(again, b, space);
    expect(await b.sites.rights(id, "doses")).toMatchObject({ held: 4, wanted: 0, value: 10 });
    await b.sites.take(id, "doses", 4);
  });
});
