import { ValidationError } from "./errors.ts";
import type { TransactOptions } from "./database-types.ts";

/**
 * The `durable` option of `transact`, checked: `"local"` when absent; `ValidationError` for anything
 * but `"local"`, `"relay"` or `{ devices: k }` with k >= 1, or a `timeout` that is not a number of ms.
 *
 * @example
 * durableOf({ durable: { devices: 2 } }); // { devices: 2 }
 */
export function durableOf(options: TransactOptions | undefined): "local" | "relay" | { devices: number } {
  const d = options?.durable;
  const t = options?.timeout;
  if (t !== undefined && !(typeof t === "number" && t >= 0))
    throw new ValidationError("timeout must be a number of milliseconds.");
  if (d === undefined || d === "local" || d === "relay") return d ?? "local";
  if (typeof d === "object" && d !== null && "devices" in d) {
    if (!(Number.isSafeInteger(d.devices) && d.devices >= 1))
      throw new ValidationError("durable.devices must be a whole number of 1 or more.");
    return { devices: d.devices };
  }
  throw new ValidationError(
    `Unknown durable option ${JSON.stringify(d)}: use "local", "relay" or { devices }.`,
  );
}
