import { closeSync, fsyncSync, mkdtempSync, openSync, rmSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/**
 * Times `count` sequential 4 KiB write+fsync pairs in a temp directory: the disk's floor under every
 * durable ack (one sqlite append is at least one such fsync). Reported beside the load figures so
 * they can be read as ratios on any machine.
 *
 * @example
 * const { p50 } = fsyncProbe(); // e.g. 1.4 ms
 */
export function fsyncProbe(count = 200): { count: number; p50: number; p99: number } {
  const dir = mkdtempSync(join(tmpdir(), "shoal-fsync-"));
  const fd = openSync(join(dir, "probe"), "w");
  const block = Buffer.alloc(4096, 1);
  const ms: number[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const t = performance.now();
      writeSync(fd, block);
      fsyncSync(fd);
      ms.push(performance.now() - t);
    }
  } finally {
    closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  }
  ms.sort((a, b) => a - b);
  const at = (q: number) => Math.round(ms[Math.min(ms.length - 1, Math.floor(q * ms.length))]! * 100) / 100;
  return { count, p50: at(0.5), p99: at(0.99) };
}
