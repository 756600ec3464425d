/** One outcome of a promise that several events race to decide (`settleOnce`). */
export interface SettleOnce {
  /** Runs `f` if nothing settled yet, after every cleanup; later calls do nothing. */
  settle(f: () => void): void;
  /** Registers what to undo (a listener, a subscription) once settled. */
  cleanup(c: () => void): void;
  readonly settled: boolean;
}

/**
 * The bookkeeping of a promise that waits for the first of several events (a live query's answer, an
 * abort signal, a timeout, the database closing): the first to settle wins and every listener the
 * others registered is removed, so a wait never leaks a live query or a timer.
 */
export function settleOnce(): SettleOnce {
  let settled = false;
  const cleanups: (() => void)[] = [];
  return {
    settle(f) {
      if (settled) return;
      settled = true;
      for (const c of cleanups) c();
      f();
    },
    cleanup(c) {
      if (settled) c();
      else cleanups.push(c);
    },
    get settled() {
      return settled;
    },
  };
}
