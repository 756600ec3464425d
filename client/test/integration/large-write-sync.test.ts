// Issue 12, item 7, the honest side: a receiver refuses any Automerge change over MAX_OPS_PER_CHANGE
// (512), so a writer cuts a larger write into changes within the cap, all in one commit. Such writes
// (a long pasted note, a record with thousands of keys, an update touching thousands of keys) still
// succeed locally and reach another device through a real relay process, whole, and that device's
// edits come back.
import { afterEach, describe, expect, it } from "vitest";
import { DEFAULT_CONTENT_LIMITS } from "../../src/protocol/limits.ts";
import { changeOpCount } from "../../src/replica/change-ops.ts";
import { seededRandom } from "../../src/testing/seeded-random.ts";
import { closeAllDevices, disposeAllRelays, openDevice, RelayHarness } from "../relay-harness.ts";
import { waitFor } from "../wait-for.ts";

type Chart = { name: string; notes: string; readings?: Record<string, number> };
const collections = { charts: { indexes: "id, name", text: ["notes"] } };
const CAP = DEFAULT_CONTENT_LIMITS.maxOpsPerChange;
const SEED = 712;

afterEach(async () => {
  await closeAllDevices();
  await disposeAllRelays();
});

describe("writes larger than one change's op cap, through a real relay process", () => {
  it("are cut into changes within the cap, sync whole to another device, and edits come back", async () => {
    console.info(`seed ${SEED}`);
    const rnd = seededRandom(SEED);
    const relay = await RelayHarness.start(["--quiet"]);
    const a = await openDevice<{ charts: Chart }>("large-a", collections);
    const b = await openDevice<{ charts: Chart }>("large-b", collections);
    const space = await a.db.createSpace({ name: "Ward" });
    await b.db.join(await a.db.invite(space, "https://app.example/"));

    // Offline first: each write must succeed on its own, with no relay involved.
    const note = Array.from({ length: 20 * CAP }, () => String.fromCharCode(97 + rnd.int(26))).join("");
    const readings = (v: number) =>
      Object.fromEntries(Array.from({ length: 5_000 }, (_, i) => [`r${i}`, i * v]));
    const longNote = await a.db.charts.insert({ name: "Long note", notes: note }, { space });
    const wide = await a.db.charts.insert({ name: "Wide", notes: "", readings: readings(1) }, { space });
    await a.db.charts.update(wide, (c) => void (c.readings = readings(2))); // 5,000 keys overwritten
    const mine = await a.db.exportCommits({}, { spaces: [space.id] });
    expect(mine).toHaveLength(3);
    for (const c of mine) {
      const changes = c.changes.flatMap((rc) => rc.changes);
      expect(changes.length).toBeGreaterThan(1); // several changes in the one commit
      for (const ch of changes) expect(changeOpCount(ch)).toBeLessThanOrEqual(CAP);
      expect(c.changes.every((rc) => rc.create === undefined)).toBe(true); // no creation over the cap
    }

    a.online(relay.url);
    b.online(relay.url);
    await waitFor(
      b.db.charts.live((t) => t.toArray()),
      (rows) => rows.length === 2,
      60_000,
      "b to receive both large records",
    );
    expect((await b.db.charts.get(longNote))?.notes).toBe(note);
    expect((await b.db.charts.get(wide))?.readings).toEqual(readings(2));
    expect(await b.db.quarantine()).toEqual([]);

    // b edits the long note (also past the cap: a pasted block in the middle); a receives it.
    const pasted = "P".repeat(3 * CAP);
    const edited = note.slice(0, 1_000) + pasted + note.slice(1_000);
    await b.db.charts.update(longNote, (c) => void (c.notes = edited));
    await waitFor(
      a.db.charts.live((t) => t.get(longNote)),
      (row) => row?.notes === edited,
      60_000,
      "a to receive b's large edit",
    );
    expect(await a.db.quarantine()).toEqual([]);
    expect(a.db.status.get().lastError).toBeUndefined();
    expect(b.db.status.get().lastError).toBeUndefined();
  });
});
