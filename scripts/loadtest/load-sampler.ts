import { loadavg } from "node:os";

/** The 1-minute load average seen during a scenario: at its start, its end, and the median and peak of samples. */
export interface LoadAverageSeen {
  start: number;
  end: number;
  median: number;
  max: number;
}

/**
 * Samples the 1-minute load average every second until `stop`. The machine may be shared: a figure
 * measured at load 9 on 2 cores means the processes under test got a fraction of a core, and the
 * report must say so next to it.
 *
 * @example
 * const load = loadSampler(); // ... the run ...
 * const { median } = load.stop();
 */
export function loadSampler(): { stop(): LoadAverageSeen } {
  const samples = [loadavg()[0]!];
  const timer = setInterval(() => samples.push(loadavg()[0]!), 1000);
  return {
    stop() {
      clearInterval(timer);
      samples.push(loadavg()[0]!);
      const sorted = [...samples].sort((a, b) => a - b);
      const r = (n: number) => Math.round(n * 100) / 100;
      return {
        start: r(samples[0]!),
        end: r(samples.at(-1)!),
        median: r(sorted[Math.floor(sorted.length / 2)]!),
        max: r(sorted.at(-1)!),
      };
    },
  };
}
