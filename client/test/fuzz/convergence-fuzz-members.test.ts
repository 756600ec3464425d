// The convergence fuzzer with membership operations (issue 13): a shard of its own, fewer seeds than
// the plain shards (a membership scenario costs more: signatures, key sealing, joins), run in parallel
// with them. `npm run fuzz -- --members` runs the same mode as a soak.
import { describe, expect, it } from "vitest";
import { runScenario, type ScenarioReport } from "./fuzz-driver.ts";

/** Seeds `npm test` runs in membership mode (SHOAL_FUZZ_MEMBER_SEEDS overrides). */
const SEEDS = Number(process.env.SHOAL_FUZZ_MEMBER_SEEDS ?? 16);

describe("seeded convergence fuzzing with membership operations", () => {
  const reports: ScenarioReport[] = [];
  for (const seed of Array.from({ length: SEEDS }, (_, i) => 5000 + i)) {
    it(`seed ${seed}`, async () => {
      try {
        reports.push(await runScenario(seed, { members: true }));
      } catch (e) {
        console.error(`Fuzz failure, seed ${seed}. Replay: npm run fuzz -- --members --seed ${seed}`);
        throw e;
      }
    });
  }
  it("mixed membership operations into the traffic", () => {
    const total = (k: keyof NonNullable<ScenarioReport["members"]>) =>
      reports.reduce((n, r) => n + (r.members?.[k] ?? 0), 0);
    // A member that can never read an epoch is left out of the checks: there must be none (key shares).
    expect(total("keyGaps")).toBe(0);
    expect(total("operations")).toBeGreaterThan(0);
    if (reports.length >= 10) {
      expect(total("removals")).toBeGreaterThan(0);
      expect(total("roleChanges")).toBeGreaterThan(0);
      expect(total("doubleRedemptions")).toBeGreaterThan(0);
      expect(total("refusedWrites")).toBeGreaterThan(0);
      // Joins must mostly complete: replicas left outside are not checked, so a regression that keeps
      // them out (a joiner that stopped proving its invitation to the relay) would pass unseen.
      expect(total("finalMembers") + total("removedReplicas")).toBeGreaterThan(2 * reports.length);
      // Retention (issue 16): records dated past the rule were inserted, swept and erased everywhere.
      const erase = (k: keyof NonNullable<ScenarioReport["erase"]>) =>
        reports.reduce((n, r) => n + (r.erase?.[k] ?? 0), 0);
      expect(erase("retentionInserts")).toBeGreaterThan(0);
      expect(erase("sweeps")).toBeGreaterThan(0);
      expect(erase("datedErased")).toBeGreaterThan(0);
    }
  });
});
