// The test of the test harness (issue 6): over the first CI seeds, the fuzz driver reports a Divergence
// for a deliberately injected bug (a half-applied commit: the last commit of each batch loses its last
// record change), and none for the same seeds without it. A fuzzer that cannot see this bug proves
// nothing by passing.
import { describe, expect, it } from "vitest";
import { Divergence, runScenario } from "./fuzz-driver.ts";

/** The first seeds of the fixed CI set (fuzz-shard.ts numbers them from 1000). */
const SEEDS = Array.from({ length: Number(process.env.SHOAL_HARNESS_SEEDS ?? 20) }, (_, i) => 1000 + i);

/**
 * The injected run's settle time. A scenario the bug keeps from converging waits its whole settle before
 * it is reported (seed 1012 did: 30 s of this file's run); a whole healthy scenario of these seeds takes
 * about 2 s on a loaded 2-core machine, and the run without the bug keeps the default 30 s. Every check
 * is the same: a settle cut short can only report a divergence sooner, as "did not converge", never
 * let a diverged scenario pass.
 */
const INJECTED_SETTLE_MS = 5_000;

async function outcome(seed: number, inject?: "drop-last-change"): Promise<string | null> {
  try {
    await runScenario(seed, inject ? { inject, settleMs: INJECTED_SETTLE_MS } : {});
    return null;
  } catch (e) {
    if (e instanceof Divergence) return e.message.split("\n")[0]!.slice(0, 160);
    throw e;
  }
}

describe("the fuzz driver catches an injected bug", () => {
  // A diverged scenario can take its whole settle time (INJECTED_SETTLE_MS) to be reported.
  it(
    `reports a Divergence for a half-applied commit within the first ${SEEDS.length} CI seeds`,
    { timeout: 240_000 },
    async () => {
      // Not a lucky seed: the bug must be visible in most scenarios.
      const needed = Math.ceil(SEEDS.length / 2);
      const caught: string[] = [];
      let ran = 0;
      for (const seed of SEEDS) {
        // Once `needed` seeds caught it, the seeds left cannot change the verdict of either check below,
        // and each costs a whole scenario (up to a settle's wait): stop there.
        if (caught.length >= needed) break;
        ran++;
        const why = await outcome(seed, "drop-last-change");
        if (why) caught.push(`seed ${seed}: ${why}`);
      }
      console.log(
        `injected bug "drop-last-change": ${caught.length} of the first ${ran} seeds diverged\n  ${caught.join("\n  ")}`,
      );
      expect(caught.length, "the fuzzer missed the injected bug on every seed").toBeGreaterThan(0);
      expect(caught.length).toBeGreaterThanOrEqual(needed);
    },
  );

  it(`reports no Divergence for the same ${SEEDS.length} seeds without the bug`, async () => {
    const diverged: string[] = [];
    for (const seed of SEEDS) {
      const why = await outcome(seed);
      if (why) diverged.push(`seed ${seed}: ${why} (replay: npm run fuzz -- --seed ${seed})`);
    }
    expect(diverged).toEqual([]);
  });
});
