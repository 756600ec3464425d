// Issue 16, item 3: relay bytes of a space before and after `db.compact`, on a small space (the
// 10,000 x 10 figures come from `npm run compaction-bytes`). A property, not a timing: the relay holds
// fewer bytes and fewer commits afterwards, and what stays is about the snapshot plus the log.
import { afterEach, describe, expect, it } from "vitest";
import { measureCompaction } from "../compaction-bytes.ts";
import { closeAllDevices, disposeAllRelays } from "../relay-harness.ts";

afterEach(async () => {
  await closeAllDevices();
  await disposeAllRelays();
});

describe("relay bytes and compaction", () => {
  it("200 records edited 10 times each: the relay holds far fewer bytes after compacting", async () => {
    const f = await measureCompaction({ records: 200, edits: 10, batch: 20 });
    expect(f.written).toBe(110);
    expect(f.after.store).toBeLessThan(f.before.store);
    expect(f.after.commits).toBeLessThan(f.before.commits);
    // What stays: the snapshot and the membership commits (the log), a few hundred bytes each.
    expect(f.after.store).toBeLessThan(f.after.snapshot + 10 * 1024);
    expect(f.before.store - f.after.store).toBeGreaterThan(f.before.store / 2);
  });
});
