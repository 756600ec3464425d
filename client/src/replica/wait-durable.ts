import { settleOnce } from "./settle-once.ts";
import { liveQuery } from "dexie";
import { DurabilityPending } from "../errors.ts";
import type { DeviceId, SpaceId } from "../types.ts";
import type { StoredCommit } from "./commit.ts";
import type { Replica } from "./replica.ts";

interface AckRow {
  space: SpaceId;
  device: DeviceId;
  seq: number;
}

/** How long and how a `durable` wait may last. */
export interface DurableWaitOptions {
  readonly signal?: AbortSignal;
  /** Milliseconds; absent: no limit. */
  readonly timeout?: number;
}

/**
 * Resolves once the relay has acknowledged every one of `commits` as durably stored: the `_acks` row
 * of its (space, device) reaches its sequence (sync writes it, in whichever tab leads, and Dexie's live
 * query sees that write here, from any tab). Rejects with `DurabilityPending` (`closed`, `aborted`,
 * `timeout`) otherwise; the commits stay saved either way, since they were stored before the wait began.
 */
export function waitForRelay(
  replica: Replica,
  commits: readonly StoredCommit[],
  result: unknown,
  options: DurableWaitOptions = {},
): Promise<void> {
  const ids = commits.map((c) => c.id as string);
  // Per (space, device): the highest sequence needed.
  const need = new Map<string, { space: SpaceId; device: DeviceId; seq: number }>();
  for (const c of commits) {
    const k = `${c.space}|${c.device}`;
    if ((need.get(k)?.seq ?? 0) < c.seq) need.set(k, { space: c.space, device: c.device, seq: c.seq });
  }
  const wanted = [...need.values()];
  if (wanted.length === 0) return Promise.resolve();
  const table = replica.dexie.table<AckRow>("_acks");
  return waitUntil(
    replica,
    () => table.bulkGet(wanted.map((w) => [w.space, w.device])),
    (rows) => wanted.every((w, i) => (rows[i]?.seq ?? 0) >= w.seq),
    ids,
    result,
    options,
  );
}

/**
 * Resolves once the live query `read` (IndexedDB reads only, so it re-runs on any tab's write) gives a
 * value `done` accepts; rejects with `DurabilityPending` carrying `commits` and `result` when `signal`,
 * `timeout` or `close()` ends the wait first. The shared wait of every `durable` option.
 */
export function waitUntil<T>(
  replica: Replica,
  read: () => Promise<T>,
  done: (value: T) => boolean,
  commits: readonly string[],
  result: unknown,
  options: DurableWaitOptions,
): Promise<void> {
  const ids = [...commits];
  return new Promise<void>((resolve, reject) => {
    const once = settleOnce();
    const settle = (f: () => void) => once.settle(f);
    const fail = (reason: "closed" | "aborted" | "timeout", cause?: unknown) =>
      settle(() =>
        reject(new DurabilityPending(reason, ids, result, cause === undefined ? undefined : { cause })),
      );
    const { signal, timeout } = options;
    if (signal) {
      if (signal.aborted) return fail("aborted", signal.reason);
      const on = () => fail("aborted", signal.reason);
      signal.addEventListener("abort", on, { once: true });
      once.cleanup(() => signal.removeEventListener("abort", on));
    }
    if (timeout !== undefined) {
      const t = setTimeout(() => fail("timeout"), timeout);
      once.cleanup(() => clearTimeout(t));
    }
    once.cleanup(replica.onClose(() => fail("closed")));
    if (once.settled) return;
    const sub = liveQuery(read).subscribe({
      next: (value) => {
        if (done(value)) settle(resolve);
      },
      // The live query fails when the connection closes under it: that is `closed`.
      error: (e) => (replica.closed ? fail("closed", e) : settle(() => reject(e))),
    });
    once.cleanup(() => sub.unsubscribe());
  });
}
