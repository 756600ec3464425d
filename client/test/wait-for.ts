import type { Observable } from "../src/live/observable.ts";

/**
 * Resolves with the first value of `obs` that passes `test`; rejects after `timeoutMs` with the last
 * value seen, so a test waits for an event, never for a fixed time.
 */
export function waitFor<T>(
  obs: Observable<T>,
  test: (v: T) => boolean,
  timeoutMs = 20_000,
  what = "condition",
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let last: T | undefined;
    let done = false;
    let sub: { unsubscribe(): void } | undefined;
    const timer = setTimeout(() => {
      done = true;
      sub?.unsubscribe();
      reject(new Error(`Timed out waiting for ${what}; last value: ${JSON.stringify(last)?.slice(0, 500)}`));
    }, timeoutMs);
    sub = obs.subscribe({
      next: (v) => {
        last = v;
        if (done || !test(v)) return;
        done = true;
        clearTimeout(timer);
        queueMicrotask(() => sub?.unsubscribe());
        resolve(v);
      },
      error: (e) => {
        clearTimeout(timer);
        reject(e);
      },
    });
    if (done) sub.unsubscribe();
  });
}
