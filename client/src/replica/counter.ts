import * as A from "@automerge/automerge";
import { ValidationError } from "../errors.ts";

/** A counter field inside an `update` function: concurrent increments on several devices add up. */
export interface Counter {
  readonly value: number;
  increment(by?: number): void;
  decrement(by?: number): void;
}

/**
 * Types a counter field of an update draft where the draft type does not know it (a row type given as
 * `openDatabase<M>`, whose counters read as `number`); a declaration that lists `counters` already
 * types them as `Counter`. Throws `ValidationError` if the field is not a declared counter.
 *
 * @example
 * await db.patients.update(id, (p) => asCounter(p.visitCount).increment());
 */
export function asCounter(field: unknown): Counter {
  if (field instanceof A.Counter) return field as unknown as Counter;
  throw new ValidationError("This field is not a counter: declare it in the collection's `counters`.");
}
