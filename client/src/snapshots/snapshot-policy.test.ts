import { describe, expect, it } from "vitest";
import { DEFAULT_SNAPSHOTS, publishThreshold, SnapshotExchange } from "./snapshot-exchange.ts";
import type { SnapshotCoverage } from "./snapshot-coverage.ts";
import type { SpaceSealer } from "../sealing/sealer.ts";
import type { DeviceId, SpaceId } from "../types.ts";

const SPACE = "0123456789abcdef0123456789abcdef" as SpaceId;
// Device ids (hex): vectors are keyed by them.
const a = "aa".repeat(16);
const b = "bb".repeat(16);

/** A remembered coverage that counts its reads and keeps its raises. */
function memoryCoverage(start: number) {
  let total = start;
  const calls = { reads: 0, raises: [] as number[] };
  const coverage: SnapshotCoverage = {
    read: async () => (calls.reads++, total),
    raise: async (t) => void (calls.raises.push(t), (total = Math.max(total, t))),
  };
  return { coverage, calls };
}

const exchange = (
  coverage?: SnapshotCoverage,
  policy: Partial<typeof DEFAULT_SNAPSHOTS> = { publishFirst: 10 },
) =>
  new SnapshotExchange({
    space: SPACE,
    spaceKey: new Uint8Array(32),
    send: () => {},
    sealer: {} as SpaceSealer,
    device: "ab".repeat(16) as DeviceId,
    policy,
    ...(coverage && { coverage }),
  });

describe("the snapshot publishing policy", () => {
  it("starts at publishFirst, waits for the log to double, and never waits more than publishEvery", () => {
    // The default: every 1,000 commits, the first included.
    expect(publishThreshold(DEFAULT_SNAPSHOTS, 0)).toBe(1000);
    expect(publishThreshold(DEFAULT_SNAPSHOTS, 50_000)).toBe(1000);
    const small = { ...DEFAULT_SNAPSHOTS, publishFirst: 10 };
    expect(publishThreshold(small, 0)).toBe(10);
    expect(publishThreshold(small, 7)).toBe(10);
    expect(publishThreshold(small, 40)).toBe(40);
    expect(publishThreshold(small, 999)).toBe(999);
    expect(publishThreshold(small, 50_000)).toBe(1000);
    // An explicit small interval keeps its meaning.
    expect(publishThreshold({ ...DEFAULT_SNAPSHOTS, publishEvery: 6 }, 0)).toBe(6);
    expect(publishThreshold({ ...DEFAULT_SNAPSHOTS, publishEvery: 6 }, 600)).toBe(6);
  });

  it("reads the remembered coverage once, counts from it, and remembers what it learns", async () => {
    const { coverage, calls } = memoryCoverage(100);
    const x = exchange(coverage);
    expect(await x.due({ [a]: 150 })).toBe(false); // 50 beyond 100: the log has not doubled
    expect(await x.due({ [a]: 199 })).toBe(false);
    expect(await x.due({ [a]: 200 })).toBe(true);
    expect(calls.reads).toBe(1);
    x.noteCovered(200);
    x.noteCovered(150); // never lowered
    expect(calls.raises).toEqual([200]);
    expect(await x.due({ [a]: 300, [b]: 50 })).toBe(false);
    expect(await x.due({ [a]: 300, [b]: 100 })).toBe(true);
  });

  it("without a remembered coverage a session starts from none; publishEvery 0 never publishes", async () => {
    expect(await exchange().due({ [a]: 9 })).toBe(false);
    expect(await exchange().due({ [a]: 10 })).toBe(true);
    expect(await exchange(undefined, {}).due({ [a]: 999 })).toBe(false);
    expect(await exchange(undefined, {}).due({ [a]: 1000 })).toBe(true);
    expect(await exchange(undefined, { publishEvery: 0 }).due({ [a]: 5000 })).toBe(false);
  });

  it("counts a stale refusal as covered, so it does not publish again at the next acknowledgement", async () => {
    const x = exchange();
    const { stored } = x.publishSealed({ [a]: 30 }, new Uint8Array(10));
    expect(await x.due({ [a]: 30 })).toBe(false); // one at a time
    expect(x.refused({ type: "error", code: "stale-snapshot", message: "newer", fatal: false })).toBe(true);
    expect(await stored).toBe(false);
    expect(await x.due({ [a]: 31 })).toBe(false);
    expect(await x.due({ [a]: 60 })).toBe(true);
  });

  it("counts a quota refusal of the snapshot as covered too; a refusal of a commit is not about it", async () => {
    const x = exchange();
    x.publishSealed({ [a]: 40 }, new Uint8Array(10));
    const device = new Uint8Array(16).fill(0xaa);
    expect(x.refused({ type: "error", code: "quota", message: "full", fatal: false, device, seq: 3 })).toBe(
      false,
    );
    expect(x.refused({ type: "error", code: "quota", message: "full", fatal: false })).toBe(true);
    expect(await x.due({ [a]: 41 })).toBe(false);
    expect(await x.due({ [a]: 80 })).toBe(true);
  });
});
