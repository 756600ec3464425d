import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { runScenario, type ScenarioReport } from "./fuzz-driver.ts";

/**
 * Seeds `npm test` runs: 120 by default (SHOAL_FUZZ_SEEDS overrides), split over shards run in parallel.
 * They guard against regressions; the soaks (`npm run fuzz -- --minutes N`, 800-1,000 scenarios in 15
 * minutes, docs/RELIABILITY.md) do the searching. It was 200 until 2026-12-08: 80 seeds cost about
 * 100 s of a worker, and the suite's 10-minute budget was far exceeded.
 */
export const FUZZ_SEEDS = Number(process.env.SHOAL_FUZZ_SEEDS ?? 120);
export const FUZZ_SHARDS = 4;

/**
 * Defines one shard of the fixed fuzz seeds as vitest tests (vitest runs shard files in parallel
 * workers). Shard 0 replays the kept regression seeds first.
 */
export function defineFuzzShard(shard: number): void {
  const regression: number[] =
    shard === 0
      ? JSON.parse(readFileSync(new URL("./regression-seeds.json", import.meta.url), "utf8")).seeds
      : [];
  const fixed = Array.from({ length: FUZZ_SEEDS }, (_, i) => 1000 + i).filter(
    (_, i) => i % FUZZ_SHARDS === shard,
  );
  describe(`seeded convergence fuzzing over a simulated network (shard ${shard + 1} of ${FUZZ_SHARDS})`, () => {
    const reports: ScenarioReport[] = [];
    for (const seed of [...regression, ...fixed]) {
      it(`seed ${seed}`, async () => {
        try {
          reports.push(await runScenario(seed));
        } catch (e) {
          console.error(`Fuzz failure, seed ${seed}. Replay: npm run fuzz -- --seed ${seed}`);
          throw e;
        }
      });
    }
    it("checked the invariant and injected faults", () => {
      const total = (k: "operations" | "invariantChecks") => reports.reduce((n, r) => n + r[k], 0);
      expect(total("operations")).toBeGreaterThan(0);
      expect(total("invariantChecks")).toBeGreaterThan(0);
      // Every scenario that got to its end read its replicas' change feeds across a reload.
      expect(reports.every((r) => (r.feedsChecked ?? 0) > 0)).toBe(true);
      if (reports.length >= 10) {
        expect(reports.some((r) => r.network.dropped > 0)).toBe(true);
        expect(reports.some((r) => r.restarts > 0)).toBe(true);
      }
    });
  });
}
