// Types for bench-chart.mjs, so that its unit tests (TypeScript) can import it.

/** A row of a bench result (bench/results/*.json `rows`): one scenario, size and system. */
export interface BenchRow {
  scenario: string;
  n: number;
  system: string;
  runs?: number;
  ms?: number | null;
  heapMB?: number | null;
  rssMB?: number | null;
  bytes?: number;
  samples?: number[];
  note?: string;
}

export interface ChartOptions {
  title?: string;
  /** One line, or several separated by "\n". */
  subtitle?: string;
  yScale?: "log" | "linear";
}

export declare const SERIES: readonly { system: string; label: string; color: string }[];
export declare function scenarioChart(
  rows: readonly BenchRow[],
  scenario: string,
  options?: ChartOptions,
): string;
export declare function benchCharts(
  rows: readonly BenchRow[],
  options?: ChartOptions,
): { scenario: string; svg: string }[];
export declare function writeBenchCharts(
  rows: readonly BenchRow[],
  dir: string,
  options?: ChartOptions & { prefix?: string },
): string[];
export declare function mergeRows(rowSets: readonly (readonly BenchRow[])[]): BenchRow[];
export declare function describeRun(result: { at?: string; load?: { run?: unknown } }, name?: string): string;
