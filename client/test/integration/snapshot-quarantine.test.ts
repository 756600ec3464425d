// Found by the hostile fuzzer's soak (forged-snapshot reports outnumbered downloads of the forged one):
// a replica holding a quarantined commit published snapshots whose vector named the quarantined slot
// without a commit for it in the log, so every joiner refused them ("The snapshot's heads, vector and
// commits disagree"), reported a bad snapshot, and replayed the whole log. Now the snapshot stops each
// device before its quarantined slot; the joiner imports it and quarantines that commit itself.
import { afterEach, describe, expect, it } from "vitest";
import { openDatabase, type Database } from "../../src/index.ts";
import type { SpaceRow } from "../../src/replica/stored-rows.ts";
import { seededRandom } from "../../src/testing/seeded-random.ts";
import { memoryTransport } from "../../src/transports/memory-transport.ts";
import type { RecordId } from "../../src/types.ts";
import { inProcessRelay } from "../../../sync-server/src/testing/in-process-relay.ts";
import {
  commitOf,
  idCreation,
  sealAs,
  seededDevice,
  seededIdentity,
  seededRecord,
} from "../fuzz/hostile-commits.ts";
import { HostileLink } from "../fuzz/hostile-link.ts";
import { waitFor } from "../wait-for.ts";

type P = { name: string; ward: string; notes: string; visits: number; kind: string; balance: number };
const collections = { patients: { indexes: "id, name, kind" } };
let n = 0;
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function device(relay: ReturnType<typeof inProcessRelay>, snapshots: { bootstrap: boolean }) {
  const db = await openDatabase<{ patients: P }>({
    name: `snap-quarantine-${n++}`,
    collections,
    persist: false,
  });
  const errors: string[] = [];
  const sub = db.status.subscribe((s) => {
    if (s.lastError && !errors.includes(`${s.lastError.code}: ${s.lastError.message}`))
      errors.push(`${s.lastError.code}: ${s.lastError.message}`);
  });
  const online = () => {
    const stop = db.sync({
      transports: [memoryTransport(relay.accept)],
      snapshots: { publishEvery: 0, ...snapshots },
    });
    cleanups.push(stop);
  };
  cleanups.push(async () => {
    sub.unsubscribe();
    await db.close();
  });
  return { db, errors, online };
}

const rows = (db: Database<{ patients: P }>) => db.patients.live((c) => c.orderBy("name").toArray());
const patient = (name: string): P => ({ name, ward: "A", notes: "", visits: 0, kind: "patient", balance: 0 });

describe("a snapshot published by a replica that holds a quarantined commit", () => {
  it("is imported by a fresh device, which quarantines that commit itself", async () => {
    const relay = inProcessRelay();
    const a = await device(relay, { bootstrap: false });
    const space = await a.db.createSpace({ name: "Ward with poison" });
    const link = await a.db.invite(space, "x:");
    a.online();
    const victim = await a.db.patients.insert(patient("One"), { space });
    await a.db.patients.insert(patient("Two"), { space });
    await waitFor(a.db.status, (s) => s.state === "synced" && s.pendingCommits === 0, 10_000, "a uploaded");

    // A member uploads a poison commit (a creation naming another record's `id`) as a new device.
    const rnd = seededRandom(12);
    const key = (await a.db.replica.dexie.table<SpaceRow>("_spaces").get(space.id))!.key;
    const mallory = (await seededIdentity(rnd)).device;
    const poison = commitOf(space.id, mallory, 1, idCreation(seededRecord(rnd), victim as RecordId));
    const raw = await HostileLink.open(memoryTransport(relay.accept), space.id, key, mallory);
    expect((await raw!.upload([await sealAs(key, poison, null)])).answer).toBe("acked");
    raw!.close();
    await waitFor(
      a.db.live(() => a.db.quarantine(space)),
      (q) => q.length === 1,
      10_000,
      "a to quarantine the poison commit",
    );
    expect((await a.db.vector([space.id]))[space.id]?.[mallory]).toBe(1);
    expect(await a.db.publishSnapshot(space)).toBe(true);

    const fresh = await device(relay, { bootstrap: true });
    await fresh.db.join(link);
    fresh.online();
    await waitFor(rows(fresh.db), (r) => r.length === 2, 10_000, "the fresh device to hold both rows");
    await waitFor(
      fresh.db.live(() => fresh.db.quarantine(space)),
      (q) => q.length === 1 && q[0]!.device === mallory,
      10_000,
      "the fresh device to quarantine the poison commit",
    );
    // It came from the snapshot: no commit applied one by one, no snapshot refused.
    expect(fresh.db.replica.stats.remoteCommits).toBe(0);
    expect(fresh.errors.filter((e) => e.startsWith("SnapshotError"))).toEqual([]);
    expect(await fresh.db.vector([space.id])).toEqual(await a.db.vector([space.id]));
    expect(await fresh.db.patients.orderBy("name").toArray()).toEqual(
      await a.db.patients.orderBy("name").toArray(),
    );
  });
});
