import { readFileSync } from "node:fs";

/** CPU time and memory of one process, read from Linux's /proc. */
export interface ProcessSample {
  /** User + system CPU seconds since the process started. */
  cpuSeconds: number;
  /** Resident set size now, and its peak, in MiB. */
  rssMiB: number;
  peakRssMiB: number;
}

// /proc/<pid>/stat counts CPU in clock ticks; Linux fixes USER_HZ at 100 for user space on every
// architecture Node runs on (`getconf CLK_TCK`).
const TICKS_PER_SECOND = 100;

/**
 * Samples a process (Linux only); `undefined` when it is gone or /proc is missing.
 *
 * @example
 * const before = sampleProcess(pid); // ... load ...
 * const after = sampleProcess(pid);
 * const cpuPercent = (100 * (after.cpuSeconds - before.cpuSeconds)) / wallSeconds;
 */
export function sampleProcess(pid: number): ProcessSample | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) may hold spaces; the fields after its closing parenthesis do not.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const cpuSeconds = (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND; // utime, stime
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const kib = (key: string) => Number(status.match(new RegExp(`^${key}:\\s+(\\d+) kB`, "m"))?.[1] ?? 0);
    return { cpuSeconds, rssMiB: kib("VmRSS") / 1024, peakRssMiB: kib("VmHWM") / 1024 };
  } catch {
    return undefined;
  }
}

/**
 * The soft and hard limits on open files of this process (Linux /proc), or undefined elsewhere.
 *
 * @example
 * const { soft } = openFileLimit() ?? { soft: 1024, hard: 1024 };
 */
export function openFileLimit(): { soft: number; hard: number } | undefined {
  try {
    const line = readFileSync("/proc/self/limits", "utf8")
      .split("\n")
      .find((l) => l.startsWith("Max open files"));
    const [soft, hard] = line!
      .split(/\s+/)
      .slice(3, 5)
      .map((v) => (v === "unlimited" ? Infinity : Number(v)));
    return { soft: soft!, hard: hard! };
  } catch {
    return undefined;
  }
}

/**
 * The sum over several processes (the nodes of a Redis Cluster): CPU seconds and RSS add up, and so
 * do the peaks (an upper bound, since they need not coincide). `undefined` if any is gone.
 *
 * @example
 * const redis = sampleProcesses(cluster.nodes.map((n) => n.pid!));
 */
export function sampleProcesses(pids: readonly number[]): ProcessSample | undefined {
  const samples = pids.map(sampleProcess);
  if (samples.length === 0 || samples.some((s) => s === undefined)) return undefined;
  return samples.reduce((sum, s) => ({
    cpuSeconds: sum!.cpuSeconds + s!.cpuSeconds,
    rssMiB: sum!.rssMiB + s!.rssMiB,
    peakRssMiB: sum!.peakRssMiB + s!.peakRssMiB,
  }))!;
}
