import type { Dexie } from "dexie";

/** Where this device remembers how far the newest snapshot it knows of a space reaches. */
export interface SnapshotCoverage {
  /** Commits (sum of the vector) covered by the newest snapshot this device knows of; 0 if none. */
  read(): Promise<number>;
  /** Raises the remembered coverage to `total` (never lowers it). */
  raise(total: number): Promise<void>;
}

interface CoverageRow {
  key: string;
  value: { total: number };
}

/**
 * The coverage of a space's snapshots as this device knows it (one it published, imported, or the relay
 * kept a newer one than), kept in `_meta` across restarts: without it every `sync()` started with no
 * knowledge and a device holding a space past the publishing threshold uploaded a whole snapshot again
 * at every start. What other devices published is not known here (the relay does not say), so each
 * writer keeps its own count; at worst a snapshot is published once more than needed.
 *
 * @example
 * const coverage = snapshotCoverage(replica.dexie, space);
 * await coverage.raise(1200);
 * await coverage.read(); // 1200
 */
export function snapshotCoverage(dexie: Dexie, space: string): SnapshotCoverage {
  const table = () => dexie.table<CoverageRow, string>("_meta");
  const key = `snapshot-covered:${space}`;
  return {
    async read() {
      return (await table().get(key))?.value.total ?? 0;
    },
    async raise(total) {
      await dexie.transaction("rw", table(), async () => {
        const now = (await table().get(key))?.value.total ?? 0;
        if (total > now) await table().put({ key, value: { total } });
      });
    },
  };
}
