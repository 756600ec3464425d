import { describe, expect, it } from "vitest";
import { sliceStats, TaskBudget } from "./task-budget.ts";

describe("TaskBudget", () => {
  it("yields to the event loop at least every maxUnits units, whatever the clock says", async () => {
    // An hour of budget: only the unit cap can make it yield, so the count is exact.
    const budget = new TaskBudget("test-cap", 3, 3_600_000);
    const order: string[] = [];
    for (let unit = 0; unit < 10; unit++) {
      await budget.step();
      // A task queued during a slice runs before the next slice starts, never inside one. (Under Node
      // a task is an immediate, as fake-indexeddb queues its callbacks; a timer's 1 ms floor may let
      // it wait for a later slice.)
      setImmediate(() => order.push(`timer after ${unit}`));
      order.push(`unit ${unit}`);
    }
    const count = sliceStats.get("test-cap")!;
    expect(count.yields).toBe(3); // slices of units 0-2, 3-5, 6-8, 9
    expect(count.maxUnitsPerSlice).toBe(3);
    expect(order.indexOf("timer after 2")).toBeLessThan(order.indexOf("unit 3"));
    expect(order.indexOf("timer after 5")).toBeLessThan(order.indexOf("unit 6"));
    expect(order.indexOf("timer after 0")).toBeGreaterThan(order.indexOf("unit 2"));
  });

  it("yields by time when the budget is spent before the cap", async () => {
    const budget = new TaskBudget("test-time", Number.POSITIVE_INFINITY, 0);
    for (let unit = 0; unit < 4; unit++) await budget.step();
    // A budget of 0 ms is spent after every unit: one unit per slice.
    expect(sliceStats.get("test-time")).toEqual({ yields: 3, maxUnitsPerSlice: 1 });
  });
});
