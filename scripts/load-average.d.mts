// Types for load-average.mjs, so that the loadtest and the unit tests (TypeScript) can import it.

/** The 1-minute load average over a stretch of a run, against the core count. */
export interface LoadSummary {
  cpus: number;
  /** How many samples (about one a second, and one at each mark). */
  samples: number;
  min: number | null;
  median: number | null;
  max: number | null;
  /** The load average exceeded the core count at some sample. */
  loaded: boolean;
}

export interface LoadSampler {
  readonly cpus: number;
  mark(): number;
  summary(from?: number, to?: number): LoadSummary;
  values(from?: number, to?: number): number[];
  stop(): LoadSummary;
}

export declare function summarizeLoad(values: readonly number[], cpuCount: number): LoadSummary;
export declare function formatLoad(summary: LoadSummary | undefined): string;
export declare function startLoadSampler(options?: {
  intervalMs?: number;
  read?: () => number;
  cpuCount?: number;
}): LoadSampler;
