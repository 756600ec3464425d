import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { runScenario, type ScenarioReport } from "./fuzz-driver.ts";

// Minimized failing seeds found by soaks are kept here and replayed first.
const regression: number[] = JSON.parse(readFileSync(new URL("./regression-seeds.json", import.meta.url), "utf8")).seeds;
const FIXED = Number(process.env.SHOAL_FUZZ_SEEDS ?? 40);
const seeds = [...regression, ...Array.from({ length: FIXED }, (_, i) => 1000 + i)];

describe("seeded convergence fuzzing over a simulated network", () => {
  const reports: ScenarioReport[] = [];
  for (const seed of seeds) {
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
    expect(reports.some((r) => r.network.dropped > 0)).toBe(true);
    expect(reports.some((r) => r.restarts > 0)).toBe(true);
  });
});
