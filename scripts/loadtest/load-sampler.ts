import type { LoadSampler, LoadSummary } from "../load-average.mjs";

/**
 * The 1-minute load average seen during a scenario: at its start, its end, and the median and peak of
 * samples; since issue 15 also its minimum, the core count, the number of samples and whether it went
 * above the core count (`loaded`), as in the bench's results.
 */
export interface LoadAverageSeen extends Omit<LoadSummary, "min" | "median" | "max"> {
  start: number;
  end: number;
  median: number;
  max: number;
  min: number;
}

/**
 * Summarises the samples of `sampler` between two marks. The machine may be shared: a figure measured
 * at load 9 on 2 cores means the processes under test got a fraction of a core, and the report must
 * say so next to it.
 *
 * @example
 * const load = startLoadSampler();
 * const from = load.mark(); // ... the scenario ...
 * const seen = loadSeen(load, from, load.mark());
 */
export function loadSeen(sampler: LoadSampler, from: number, to: number): LoadAverageSeen {
  const values = sampler.values(from, to);
  const summary = sampler.summary(from, to);
  const r = (n: number) => Math.round(n * 100) / 100;
  return {
    ...summary,
    start: r(values[0]!),
    end: r(values.at(-1)!),
    min: summary.min!,
    median: summary.median!,
    max: summary.max!,
  };
}
