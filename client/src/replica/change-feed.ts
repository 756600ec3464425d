import { settleOnce } from "./settle-once.ts";
import { liveQuery, type Dexie } from "dexie";
import { DatabaseClosed, ValidationError } from "../errors.ts";
import type { Observable, Subscription } from "../live/observable.ts";
import type { CommitId, DeviceId, RecordId, SpaceId } from "../types.ts";
import type { StoredCommit } from "./commit.ts";
import type { Replica } from "./replica.ts";

/** One record a commit of the change feed changed. */
export interface ChangedRecord {
  readonly id: RecordId;
  readonly collection: string;
  readonly op: "insert" | "update" | "delete";
  /** Top-level fields changed (empty for a delete). */
  readonly paths: readonly string[];
}

/** One commit applied on this device, as the change feed reports it. */
export interface Change {
  /** Resume after this change: pass it as `since` (opaque; valid for this database on this device). */
  readonly cursor: string;
  readonly commit: CommitId;
  readonly space: SpaceId;
  /** The author device. */
  readonly device: DeviceId;
  readonly seq: number;
  /** The author's wall-clock time (ms since 1970), for people only. */
  readonly at: number;
  /** Made on this device (by any tab of it); false for one applied from elsewhere. */
  readonly local: boolean;
  /** A membership operation (no records); never listed when `collections` is given. */
  readonly membership: boolean;
  /** The records it changed (only those of `collections`, when given). */
  readonly records: readonly ChangedRecord[];
}

/** What one read of the feed returned, with the cursor to resume after it. */
export interface ChangeBatch {
  readonly changes: readonly Change[];
  /** Resume after this batch (it may be past the last change: commits the filter skipped). */
  readonly cursor: string;
}

/** Options of `db.changes()`. */
export interface ChangesOptions {
  /**
   * Where to start: a cursor from an earlier `Change` or `ChangeBatch` (resume after it), `"now"`
   * (only commits applied from now on), or absent (every commit this device holds, oldest first).
   */
  readonly since?: string;
  /** Only commits that changed records of these collections (and only those records are listed). */
  readonly collections?: readonly string[];
  /** Most commits read per batch (one IndexedDB read each); default 100. */
  readonly batchSize?: number;
  /** Ends the iteration (and the subscription) when it fires. */
  readonly signal?: AbortSignal;
}

/**
 * A resumable stream of the commits applied on this device: an async iterable of `Change`, an
 * Observable of `Change`, and `batches()` for consumers that save their cursor per batch.
 */
export interface ChangeFeed extends AsyncIterable<Change>, Observable<Change> {
  /** The same stream, one `ChangeBatch` per read. */
  batches(): AsyncIterable<ChangeBatch>;
}

const DEFAULT_BATCH = 100;

/** `<device>.<pos>`: the device tells one database's cursors from another's. */
function cursorOf(device: DeviceId, pos: number): string {
  return `${device}.${pos}`;
}

function parseCursor(cursor: string, device: DeviceId): number {
  if (typeof cursor !== "string") throw new ValidationError("A change feed cursor is a string.");
  const dot = cursor.lastIndexOf(".");
  const pos = Number(cursor.slice(dot + 1));
  if (dot < 0 || !Number.isSafeInteger(pos) || pos < 0)
    throw new ValidationError(`Not a change feed cursor: "${cursor}".`);
  if (cursor.slice(0, dot) !== device)
    throw new ValidationError(
      "This change feed cursor belongs to another database (or one deleted and made again): start over without `since`.",
    );
  return pos;
}

/**
 * The change feed of a replica. Its order is the commit log's local position (`_commits.pos`, an
 * IndexedDB auto-increment key): every commit is stored with the next one, in the transaction that
 * applies it (local write, remote chunk, membership operation, snapshot), and IndexedDB serializes
 * those transactions and never reuses a key, so a commit committed later never takes a position below
 * one a reader has already seen. Reading "after position p" is therefore gap-free and repeat-free, and
 * survives a reload since the position is stored with the commit.
 */
export function changeFeed(replica: Replica, options: ChangesOptions = {}): ChangeFeed {
  const device = replica.device;
  const collections = options.collections ? new Set(options.collections) : undefined;
  if (collections)
    for (const c of collections)
      if (!replica.specs.has(c)) throw new ValidationError(`Unknown collection "${c}".`);
  const batchSize = options.batchSize ?? DEFAULT_BATCH;
  if (!Number.isSafeInteger(batchSize) || batchSize < 1)
    throw new ValidationError("batchSize must be a positive integer.");
  const since = options.since;
  const explicit = since !== undefined && since !== "now" ? parseCursor(since, device) : undefined;

  const batches = (signal: AbortSignal | undefined): AsyncIterable<ChangeBatch> => ({
    [Symbol.asyncIterator]: () =>
      batchIterator(replica, {
        start: explicit,
        fromNow: since === "now",
        collections,
        batchSize,
        signals: [options.signal, signal].filter((s): s is AbortSignal => s !== undefined),
      }),
  });

  async function* changes(signal?: AbortSignal): AsyncGenerator<Change> {
    for await (const b of batches(signal)) yield* b.changes;
  }

  return {
    batches: () => batches(undefined),
    [Symbol.asyncIterator]: () => changes(),
    subscribe(
      a: ((value: Change) => void) | { next?: (value: Change) => void; error?: (e: unknown) => void },
      b?: (e: unknown) => void,
    ): Subscription {
      const next = typeof a === "function" ? a : a.next?.bind(a);
      const error = typeof a === "function" ? b : a.error?.bind(a);
      const stop = new AbortController();
      const sub = {
        closed: false,
        unsubscribe() {
          sub.closed = true;
          stop.abort();
        },
      };
      void (async () => {
        try {
          for await (const c of changes(stop.signal)) {
            if (sub.closed) return;
            next?.(c);
          }
        } catch (e) {
          if (!sub.closed) error?.(e);
        } finally {
          sub.closed = true;
        }
      })();
      return sub;
    },
  } as ChangeFeed;
}

interface IterationOptions {
  start: number | undefined;
  fromNow: boolean;
  collections: Set<string> | undefined;
  batchSize: number;
  signals: AbortSignal[];
}

/**
 * Reads pages of `_commits` after a position; when none is left, waits (a Dexie live query, which sees
 * this tab's writes and, through Dexie's BroadcastChannel, other tabs') for a commit after it. Ends when
 * a signal fires; throws `DatabaseClosed` when the database closes while it waits or reads.
 */
function batchIterator(replica: Replica, o: IterationOptions): AsyncIterator<ChangeBatch> {
  const { dexie, device } = replica;
  const table = dexie.table<StoredCommit, number>("_commits");
  let pos: number | undefined = o.start;
  let done = false;
  const aborted = () => o.signals.some((s) => s.aborted);

  const next = async (): Promise<IteratorResult<ChangeBatch>> => {
    if (done) return { done: true, value: undefined };
    if (replica.closed) throw new DatabaseClosed();
    if (pos === undefined)
      pos = o.fromNow ? (((await table.orderBy(":id").lastKey()) as number | undefined) ?? 0) : 0;
    for (;;) {
      if (aborted()) return finish();
      let rows: StoredCommit[];
      try {
        rows = await table.where(":id").above(pos).limit(o.batchSize).toArray();
      } catch (e) {
        if (replica.closed) throw new DatabaseClosed();
        throw e;
      }
      if (rows.length > 0) {
        pos = rows[rows.length - 1]!.pos!;
        const changes = rows.flatMap((r) => toChange(r, device, o.collections));
        if (changes.length > 0) return { done: false, value: { changes, cursor: cursorOf(device, pos) } };
        continue;
      }
      const woke = await waitAfter(replica, pos!, o.signals);
      if (woke === "aborted") return finish();
    }
  };
  const finish = (): IteratorResult<ChangeBatch> => {
    done = true;
    return { done: true, value: undefined };
  };
  return {
    next,
    return: async () => finish(),
  };
}

function toChange(r: StoredCommit, device: DeviceId, collections: Set<string> | undefined): Change[] {
  const records = r.changes
    .filter((rc) => !collections || collections.has(rc.collection))
    .map((rc) => ({ id: rc.record, collection: rc.collection, op: rc.op, paths: rc.paths }));
  if (collections && records.length === 0) return [];
  return [
    {
      cursor: cursorOf(device, r.pos!),
      commit: r.id,
      space: r.space,
      device: r.device,
      seq: r.seq,
      at: r.at,
      local: r.device === device,
      membership: r.membership !== undefined,
      records,
    },
  ];
}

/** Resolves once a commit after `pos` is stored, or the signals fire; rejects when the database closes. */
function waitAfter(replica: Replica, pos: number, signals: AbortSignal[]): Promise<"more" | "aborted"> {
  const dexie: Dexie = replica.dexie;
  return new Promise((resolve, reject) => {
    const once = settleOnce();
    const settle = (f: () => void) => once.settle(f);
    for (const s of signals) {
      if (s.aborted) return settle(() => resolve("aborted"));
      const on = () => settle(() => resolve("aborted"));
      s.addEventListener("abort", on, { once: true });
      once.cleanup(() => s.removeEventListener("abort", on));
    }
    once.cleanup(replica.onClose(() => settle(() => reject(new DatabaseClosed()))));
    if (once.settled) return;
    // A count, not `primaryKeys()`: Dexie (4.x) does not re-run a live query of primary keys when rows
    // are added with auto-incremented keys, and a count over the (empty) range costs as little.
    const sub = liveQuery(() =>
      dexie.table<StoredCommit, number>("_commits").where(":id").above(pos).count(),
    ).subscribe({
      next: (count) => {
        if (count > 0) settle(() => resolve("more"));
      },
      error: (e) => settle(() => reject(replica.closed ? new DatabaseClosed() : e)),
    });
    once.cleanup(() => sub.unsubscribe());
  });
}
