import type { Observable, Subscription } from "./observable.ts";

type Observer<T> = { next?: (value: T) => void; error?: (e: unknown) => void };

/**
 * A current value that can be watched: `subscribe` delivers the current value at once, then every
 * change. Used for `db.status`.
 *
 * @example
 * const s = new ValueStore({ n: 0 }); s.subscribe((v) => console.log(v.n)); s.set({ n: 1 });
 */
export class ValueStore<T> implements Observable<T> {
  #value: T;
  readonly #observers = new Set<Observer<T>>();

  constructor(initial: T) {
    this.#value = initial;
  }

  /** The current value. */
  get(): T {
    return this.#value;
  }

  /** Replaces the value and tells every subscriber. */
  set(value: T): void {
    this.#value = value;
    for (const o of [...this.#observers]) {
      try {
        o.next?.(value);
      } catch (e) {
        console.error("Shoal: a status subscriber threw", e);
      }
    }
  }

  subscribe(next: ((value: T) => void) | Observer<T>, error?: (e: unknown) => void): Subscription {
    const o: Observer<T> = typeof next === "function" ? { next, error } : next;
    this.#observers.add(o);
    let closed = false;
    o.next?.(this.#value);
    return {
      unsubscribe: () => {
        closed = true;
        this.#observers.delete(o);
      },
      get closed() {
        return closed;
      },
    };
  }
}
