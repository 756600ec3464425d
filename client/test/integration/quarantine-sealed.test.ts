// Found by the hostile fuzzer's soak (seed 10311: "Commits 1..1 of <device> are not all held", thrown
// while sealing): a quarantined commit holds its slot with nothing in the log, so its sealed bytes are
// the only copy this replica has, and they were kept only after the commit was applied. A database
// closed in between (a reload, the fuzzer's restarts) kept the slot without the bytes, for good: the
// replica then could not refill a wiped relay (every upload pass threw at that device) nor seal it for
// a snapshot. Now the bytes are kept before the apply.
import { afterEach, describe, expect, it } from "vitest";
import { openDatabase } from "../../src/index.ts";
import type { ApplyReport } from "../../src/replica/apply-remote.ts";
import type { Commit } from "../../src/replica/commit.ts";
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
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const patient = (name: string): P => ({ name, ward: "A", notes: "", visits: 0, kind: "patient", balance: 0 });
const open = (name: string) => openDatabase<{ patients: P }>({ name, collections, persist: false });

describe("a quarantined commit received from the relay", () => {
  it("keeps its sealed bytes even if the database closes right after applying it; a wiped relay is refilled with it", async () => {
    const relay = inProcessRelay();
    const name = "quarantine-sealed-a";
    const a = await open(name);
    const space = await a.createSpace({ name: "Ward" });
    const stop = a.sync({ transports: [memoryTransport(relay.accept)], backoff: { baseMs: 5, maxMs: 50 } });
    const victim = await a.patients.insert(patient("One"), { space });
    await waitFor(a.status, (s) => s.state === "synced" && s.pendingCommits === 0, 10_000, "a uploaded");

    // The database closes as soon as the poison commit is applied (quarantined): a reload at that moment.
    const applied = a.applyCommits.bind(a);
    let closed: Promise<void> | null = null;
    let reloaded!: () => void;
    const reload = new Promise<void>((resolve) => (reloaded = resolve));
    a.applyCommits = async (commits: readonly Commit[], from?: string): Promise<ApplyReport> => {
      const report = await applied(commits, from);
      if (report.quarantined.length > 0 && !closed) {
        stop();
        closed = a.close();
        void closed.then(reloaded);
      }
      return report;
    };
    const rnd = seededRandom(7);
    const key = (await a.replica.dexie.table<SpaceRow>("_spaces").get(space.id))!.key;
    const mallory = (await seededIdentity(rnd)).device;
    const poison = commitOf(space.id, mallory, 1, idCreation(seededRecord(rnd), victim as RecordId));
    const raw = await HostileLink.open(memoryTransport(relay.accept), space.id, key, mallory);
    expect((await raw!.upload([await sealAs(key, poison, null)])).answer).toBe("acked");
    raw!.close();
    await reload;

    // Reopened: the slot is held and its sealed bytes are there.
    const again = await open(name);
    cleanups.push(() => again.close());
    expect((await again.vector([space.id]))[space.id]?.[mallory]).toBe(1);
    expect(await again.quarantine(space)).toHaveLength(1);
    const sealed = await again.replica.dexie.table("_sealed").get([space.id, mallory, 1]);
    expect(sealed).toBeDefined();

    // A wiped relay (a new one) gets every commit this replica holds back from it, the quarantined too.
    const wiped = inProcessRelay();
    const errors: string[] = [];
    const sub = again.status.subscribe((s) => void (s.lastError && errors.push(s.lastError.message)));
    cleanups.push(() => sub.unsubscribe());
    cleanups.push(
      again.sync({ transports: [memoryTransport(wiped.accept)], backoff: { baseMs: 5, maxMs: 50 } }),
    );
    await waitFor(
      again.status,
      (s) => s.state === "synced" && s.pendingCommits === 0,
      10_000,
      "the reopened replica synced with the wiped relay",
    );
    for (let i = 0; i < 1000 && (await wiped.store.vector(space.id)).get(mallory) !== 1; i++)
      await new Promise((r) => setTimeout(r, 5));
    expect((await wiped.store.vector(space.id)).get(mallory)).toBe(1);
    expect(errors.filter((e) => /not all held/.test(e))).toEqual([]);
  });
});
