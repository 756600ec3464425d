// Seeded convergence fuzzing with a hostile member (issue 12, second "Done when" item): among normal
// traffic one device injects the inputs of items 1-5 (HostileMember) and the simulated network flips
// bits in frames both ways (item 10); every honest replica must still converge with the others, report
// the hostile commits, and keep its data intact (hostile-invariant.ts).
import { describe, expect, it } from "vitest";
import { runScenario, type ScenarioReport } from "./fuzz-driver.ts";
import { HOSTILE_ACTIONS } from "./hostile-member.ts";

/**
 * Seeds a soak found diverging (2026-12-06, see docs/RELIABILITY.md), replayed in every run. Timers drive
 * the sessions, so a replay need not take the same path: each bug also has its own deterministic test
 * (client/test/integration/stuck-upload, quarantine-sealed and snapshot-quarantine; the store contract).
 */
const SOAK_SEEDS = [10054, 10068, 10170, 10225, 10311, 10458];
/** Hostile seeds per run (SHOAL_HOSTILE_SEEDS overrides); numbered from 5000, apart from the CI seeds. */
const SEEDS = [
  ...Array.from({ length: Number(process.env.SHOAL_HOSTILE_SEEDS ?? 20) }, (_, i) => 5000 + i),
  ...SOAK_SEEDS,
];
/** Files the seeds are split over (hostile-fuzz-N.test.ts), which vitest runs in parallel workers. */
export const HOSTILE_SHARDS = 2;
/** Probability per frame of a flipped bit, both ways. */
const BIT_FLIPS = 0.005;

/** Defines one shard of the hostile seeds as vitest tests; shard 0 also holds the (opt-in) cliff run. */
export function defineHostileShard(shard: number): void {
  describe(`seeded convergence fuzzing with a hostile member and bit flips (shard ${shard + 1} of ${HOSTILE_SHARDS})`, () => {
    const reports: ScenarioReport[] = [];
    for (const seed of SEEDS.filter((_, i) => i % HOSTILE_SHARDS === shard)) {
      it(`hostile seed ${seed}`, { timeout: 120_000 }, async () => {
        try {
          reports.push(await runScenario(seed, { hostile: true, bitFlips: BIT_FLIPS }));
        } catch (e) {
          console.error(
            `Hostile fuzz failure, seed ${seed}. Replay: npm run fuzz -- --hostile --bit-flips ${BIT_FLIPS} --seed ${seed}`,
          );
          throw e;
        }
      });
    }

    // Item 4 at its old cliff: more device ids than protocol 1's 4,096-entry vector cap, in one run. Opt-in
    // (SHOAL_HOSTILE_CLIFF=1): six replicas applying 4,200 new devices' commits under fake-indexeddb take
    // minutes, far past the time `npm test` gives the fuzzer; the relay and session tests of protocol 2
    // cover 10,000 devices in one space directly.
    it.skipIf(shard !== 0 || process.env.SHOAL_HOSTILE_CLIFF !== "1")(
      "hostile seed 6000 with 4,200 fake device ids",
      { timeout: 600_000 },
      async () => {
        const r = await runScenario(6000, {
          hostile: { devices: 4_200, actions: ["many-devices", "deep", "creation-id"] },
          bitFlips: BIT_FLIPS,
          settleMs: 120_000,
        });
        const many = r.hostile!.injected.find((i) => i.action === "many-devices")!;
        expect(many.devices!.length).toBeGreaterThan(4_096);
      },
    );

    // Not a vacuous pass: the runs above injected every input for real and flipped bits. An input landed
    // when the relay took it, or (the forged twin) when it reached the replica, refused or not.
    it("injected every hostile input and flipped bits", () => {
      const landed = new Set(
        reports.flatMap((r) =>
          r
            .hostile!.injected.filter((i) => /^(acked|stored|imported|refused)/.test(i.answer))
            .map((i) => i.action),
        ),
      );
      if (reports.length >= 8) {
        expect([...landed].sort()).toEqual([...HOSTILE_ACTIONS].sort());
        expect(reports.reduce((n, r) => n + r.network.flipped, 0)).toBeGreaterThan(0);
        expect(reports.some((r) => r.hostile!.forgedSnapshotsReported > 0)).toBe(true);
      }
    });
  });
}
