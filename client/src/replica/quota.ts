import { QuotaExceeded } from "../errors.ts";

/**
 * Maps a storage failure to `QuotaExceeded` when the browser ran out of room. Dexie wraps the DOM error
 * (`QuotaExceededError`) in its own errors, sometimes inside an `AbortError` (`inner`), so look deep.
 */
export function asStorageError(e: unknown): unknown {
  let cur: unknown = e;
  for (let depth = 0; cur && depth < 5; depth++) {
    const err = cur as { name?: string; inner?: unknown; cause?: unknown };
    if (err.name === "QuotaExceededError" || err.name === "QuotaExceeded") {
      return e instanceof QuotaExceeded ? e : new QuotaExceeded(undefined, { cause: e });
    }
    cur = err.inner ?? err.cause;
  }
  return e;
}
