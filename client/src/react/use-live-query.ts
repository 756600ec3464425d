import { useEffect, useState } from "react";
import { live } from "../live/observable.ts";

/**
 * A React hook over a live query: returns `undefined` until the first result, then the latest one,
 * re-rendering only when a commit touches what the query read. Errors are thrown during render so an
 * error boundary shows them.
 *
 * @example
 * const wardA = useLiveQuery(() => db.patients.where("ward").equals("A").toArray(), [db]);
 */
export function useLiveQuery<T>(querier: () => Promise<T> | T, deps: readonly unknown[] = []): T | undefined {
  const [state, setState] = useState<{ value?: T; error?: unknown }>({});
  useEffect(() => {
    const sub = live(querier).subscribe({
      next: (value) => setState({ value }),
      error: (error) => setState({ error }),
    });
    return () => sub.unsubscribe();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, deps);
  if (state.error !== undefined) throw state.error;
  return state.value;
}
