import { afterEach, describe, expect, it } from "vitest";
import { waitFor } from "../wait-for.ts";
import {
  closeAllDevices,
  disposeAllRelays,
  openDevice,
  relayTransport,
  patientCollections,
  RelayHarness,
  relayAcknowledged,
  type Patient,
} from "../relay-harness.ts";
import { CHECK_PER_SLICE, OPEN_PER_SLICE, sliceStats } from "../../src/replica/task-budget.ts";

// Issue 15, item 2: no task over 50 ms while a fresh device bootstraps. Time cannot be asserted here,
// so this checks the bound that does not depend on it: every loop of a bootstrap (opening the sealed
// commits, checking them, applying them chunk by chunk) yields to the event loop after at most a
// fixed number of units, and does yield. A loop that ran a whole batch in one task fails it.

const COMMITS = 40;
const PER_COMMIT = 25;

afterEach(async () => {
  await closeAllDevices();
  await disposeAllRelays();
});

describe("a fresh device's bootstrap through the relay process", () => {
  it(`opens, checks and applies ${COMMITS} commits in bounded slices with yields between them`, async () => {
    const relay = await RelayHarness.start(["--quiet"]);
    const a = await openDevice<{ patients: Patient }>("a", patientCollections);
    const space = await a.db.createSpace({ name: "Ward" });
    for (let t = 0; t < COMMITS; t++) {
      await a.db.transact(async (tx) => {
        for (let i = 0; i < PER_COMMIT; i++)
          await tx.patients.insert({ name: `P${t}-${i}`, ward: `W${i % 5}`, notes: "n" }, { space });
      });
    }
    a.online(relay.url);
    await relayAcknowledged(a.db, space.id, 60_000);

    const b = await openDevice<{ patients: Patient }>("b", patientCollections);
    await b.db.join(await a.db.invite(space, "https://app.example/"));
    sliceStats.clear();
    // A timer heartbeat: each beat notes how many records b holds. Had the bootstrap held the event
    // loop from its first commit to its last, the beats would see only "none" and "all".
    const seen = new Set<number>();
    let beating = true;
    const beat = (): void => {
      seen.add(b.db.replica.stats.remoteCommits);
      if (beating) setTimeout(beat, 0);
    };
    setTimeout(beat, 0);
    // The replay path is the one measured here: a's upload made a snapshot due (a space's first comes at
    // 10 commits), which b would otherwise bootstrap from (snapshot-sync.test.ts covers that path).
    b.db.sync({ transports: [relayTransport(relay.url)], snapshots: { bootstrap: false } });
    await waitFor(
      b.db.patients.live((c) => c.count()),
      (n) => n === COMMITS * PER_COMMIT,
      60_000,
      "b to hold every record",
    );
    beating = false;

    const open = sliceStats.get("open");
    const check = sliceStats.get("check");
    const chunk = sliceStats.get("chunk");
    const report = JSON.stringify(Object.fromEntries(sliceStats));
    expect(open, report).toBeDefined();
    expect(check, report).toBeDefined();
    expect(chunk, report).toBeDefined();
    // Bounded: never more units in one slice than the cap.
    expect(open!.maxUnitsPerSlice, report).toBeLessThanOrEqual(OPEN_PER_SLICE);
    expect(check!.maxUnitsPerSlice, report).toBeLessThanOrEqual(CHECK_PER_SLICE);
    expect(chunk!.maxUnitsPerSlice, report).toBe(1);
    // And yielding: a batch of COMMITS commits is opened in at least COMMITS / OPEN_PER_SLICE slices
    // (less one per batch the relay split the pull into, at most one per 8 commits here).
    expect(open!.yields, report).toBeGreaterThanOrEqual(COMMITS / OPEN_PER_SLICE - COMMITS / 8);
    expect(check!.yields, report).toBeGreaterThanOrEqual(1);
    // Chunks of one commit at least: more chunks than one, with a yield between any two.
    expect(chunk!.yields, report).toBeGreaterThanOrEqual(1);
    // Timers ran while the records arrived, not only before and after.
    const midway = [...seen].filter((n) => n > 0 && n < b.db.replica.stats.remoteCommits);
    expect(midway.length, `commits seen by the heartbeat: ${[...seen].join(", ")}`).toBeGreaterThan(1);
  }, 120_000);
});
