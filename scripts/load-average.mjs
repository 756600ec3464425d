// How busy the machine was while `npm run bench` or `npm run loadtest` measured: the 1-minute load
// average sampled every second in the parent process, summarised per size (bench), per scenario
// (loadtest) and for the whole run. The machine may be shared with other test runs; a figure taken at
// load 9 on 2 cores says little about the code, and the report has to say so next to it.
// Plain JavaScript: bench.mjs runs under plain Node, the loadtest (TypeScript, tsx) imports it too.
import { cpus, loadavg } from "node:os";

const round2 = (x) => Math.round(x * 100) / 100;

/**
 * Min, median and max of 1-minute load averages, with the core count they are to be read against.
 * `loaded` is true when the load average went above the core count at any sample: more runnable
 * processes than cores, so the processes under test had to wait for a CPU. The load average counts
 * the bench's own processes too (a browser, a relay, the orchestrator): about 1 to 2 on its own.
 *
 * @example
 * summarizeLoad([0.5, 1.2, 2.5], 2); // { cpus: 2, samples: 3, min: 0.5, median: 1.2, max: 2.5, loaded: true }
 */
export function summarizeLoad(values, cpuCount) {
  const sorted = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (sorted.length === 0)
    return { cpus: cpuCount, samples: 0, min: null, median: null, max: null, loaded: false };
  const m = Math.floor(sorted.length / 2);
  const median = sorted.length % 2 ? sorted[m] : (sorted[m - 1] + sorted[m]) / 2;
  const max = sorted.at(-1);
  return {
    cpus: cpuCount,
    samples: sorted.length,
    min: round2(sorted[0]),
    median: round2(median),
    max: round2(max),
    loaded: max > cpuCount,
  };
}

/**
 * For a report: `0.52 / 1.1 / 2.31 (min / median / max) on 2 cores`, and a warning when `loaded`.
 *
 * @example
 * formatLoad(summarizeLoad([3, 4], 2)); // "3 / 3.5 / 4 (min / median / max) on 2 cores: LOADED, ..."
 */
export function formatLoad(summary) {
  if (!summary || summary.samples === 0) return "not sampled";
  const text = `${summary.min} / ${summary.median} / ${summary.max} (min / median / max) on ${summary.cpus} cores`;
  return summary.loaded ? `${text}: LOADED, above the core count, times are inflated` : text;
}

/**
 * Samples the 1-minute load average every `intervalMs` until `stop()`. `mark()` takes a sample now
 * and returns its position, so that `summary(from, to)` covers exactly one stretch of the run (one
 * size, one scenario) however short; `summary()` alone covers everything so far.
 *
 * @example
 * const load = startLoadSampler();
 * const from = load.mark(); // ... one scenario ...
 * const scenario = load.summary(from, load.mark());
 * const whole = load.stop();
 */
export function startLoadSampler({
  intervalMs = 1000,
  read = () => loadavg()[0],
  cpuCount = cpus().length,
} = {}) {
  const values = [read()];
  const timer = setInterval(() => values.push(read()), intervalMs);
  // The sampler must never keep a finished run alive.
  timer.unref?.();
  return {
    cpus: cpuCount,
    mark() {
      values.push(read());
      return values.length - 1;
    },
    summary(from = 0, to = values.length - 1) {
      return summarizeLoad(values.slice(from, to + 1), cpuCount);
    },
    /** The samples from `from` to `to` (inclusive), as taken. */
    values(from = 0, to = values.length - 1) {
      return values.slice(from, to + 1);
    },
    stop() {
      clearInterval(timer);
      values.push(read());
      return summarizeLoad(values, cpuCount);
    },
  };
}
