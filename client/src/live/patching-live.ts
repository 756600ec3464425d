import { Dexie, cmp, type ObservabilitySet } from "dexie";
import { shapeOf, type Query } from "../replica/query.ts";
import { compareRows, rowMatches, type QueryShape } from "../replica/query-shape.ts";
import type { Observable, Subscription } from "./observable.ts";

/** One node of the interval tree Dexie reports changed keys in (a plain object once it crossed tabs). */
interface RangeNode {
  from?: unknown;
  to?: unknown;
  l?: RangeNode | null;
  r?: RangeNode | null;
  d?: number;
}

type Row = { readonly id: string } & Record<string, unknown>;

/**
 * A live query kept up to date row by row. It runs `build()`'s query once, then listens to Dexie's
 * `storagemutated` event, which reports the primary keys every committed IndexedDB transaction changed,
 * in this tab (local commits, applied remote ones) and in the other tabs of the browser (through Dexie's
 * BroadcastChannel). For a handful of changed rows of its table it reads just those rows and patches
 * the result with the query's shape (range test, filters, order); for anything it cannot follow key by
 * key (a key range, a cleared table, a bulk write of 50 rows or more, more rows than it is worth) it
 * runs the whole query again. Every emission is a new array; rows that did not change keep their
 * identity, so a UI re-renders only what changed.
 *
 * Why: Dexie re-runs a live query after any explicit transaction that touched its range, and a re-run
 * costs the whole result (about 15 ms for 1,000 rows in Chromium, 0.7 s for 10,000); every Shoal commit
 * is an explicit transaction, since rows, documents and the commit log are written atomically.
 *
 * @example
 * patchingLive(dexie, "patients", () => collection.where("ward").equals("W3")).subscribe(render);
 */
export function patchingLive<T extends Row>(dexie: Dexie, table: string, build: () => Query<T>): Observable<T[]> {
  return {
    subscribe(
      a: ((value: T[]) => void) | { next?: (value: T[]) => void; error?: (e: unknown) => void },
      b?: (e: unknown) => void,
    ): Subscription {
      const observer = typeof a === "function" ? { next: a, error: b } : a;
      const part = `idb://${dexie.name}/${table}/`;
      let closed = false;
      let running = false;
      let rows: T[] = [];
      let shape: QueryShape | undefined;
      let full = true;
      const changed = new Set<string>();

      const onMutated = (parts: ObservabilitySet): void => {
        if (closed) return;
        if ((parts as { all?: unknown }).all) full = true;
        else {
          const tree = parts[part] as RangeNode | undefined;
          if (!tree) return;
          if (!collectPoints(tree, changed)) full = true;
        }
        void run();
      };
      const subscription: Subscription = {
        unsubscribe() {
          if (closed) return;
          closed = true;
          Dexie.on.storagemutated.unsubscribe(onMutated);
        },
        get closed() {
          return closed;
        },
      };

      // One pass at a time; changes reported meanwhile are picked up by the same loop.
      const run = async (): Promise<void> => {
        if (running) return;
        running = true;
        try {
          while (!closed && (full || changed.size > 0)) {
            // Reading many rows one by one costs more than the query itself.
            if (!shape || changed.size > Math.max(64, rows.length / 2)) full = true;
            if (full) {
              full = false;
              changed.clear();
              const q = build();
              const result = await q.toArray();
              if (closed) return;
              shape = shapeOf(q);
              rows = result;
              observer.next?.(rows);
              continue;
            }
            const ids = [...changed];
            changed.clear();
            const fresh = (await dexie.table(table).bulkGet(ids)) as (T | undefined)[];
            if (closed || full || !shape) continue;
            const next = patch(rows, shape, ids, fresh);
            if (next !== rows) {
              rows = next;
              observer.next?.(rows);
            }
          }
        } catch (e) {
          if (closed) return;
          subscription.unsubscribe();
          observer.error?.(e);
        } finally {
          running = false;
        }
      };

      Dexie.on("storagemutated", onMutated);
      void run();
      return subscription;
    },
  } as Observable<T[]>;
}

/**
 * Adds the single keys of a changed-keys tree to `out`; false when the tree holds a range (then the
 * caller cannot tell which rows changed).
 */
function collectPoints(node: RangeNode | null | undefined, out: Set<string>): boolean {
  if (!node || node.d === 0 || node.from === undefined) return true;
  if (typeof node.from !== "string" || typeof node.to !== "string" || cmp(node.from, node.to) !== 0)
    return false;
  out.add(node.from);
  return collectPoints(node.l, out) && collectPoints(node.r, out);
}

/** `rows` with the changed ids replaced by their current rows where those match, in query order. */
function patch<T extends Row>(
  rows: T[],
  shape: QueryShape,
  ids: readonly string[],
  fresh: readonly (T | undefined)[],
): T[] {
  const gone = new Set(ids);
  const out = rows.filter((r) => !gone.has(r.id));
  let changed = out.length !== rows.length;
  for (const row of fresh) {
    if (!row || !rowMatches(shape, row)) continue;
    // Binary search for the first row ordered after this one.
    let lo = 0;
    let hi = out.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (compareRows(shape, out[mid]!, row) <= 0) lo = mid + 1;
      else hi = mid;
    }
    out.splice(lo, 0, row);
    changed = true;
  }
  return changed ? out : rows;
}
