// What the compaction tests read and wait for through a real relay: its store's bytes, and a patient
// arriving on a device.
import type { Database } from "../src/index.ts";
import type { Patient, RelayHarness } from "./relay-harness.ts";
import { waitFor } from "./wait-for.ts";

/** The relay store's bytes (`shoal_store_bytes` of `/metrics`), NaN if it does not say. */
export async function storeBytes(relay: RelayHarness): Promise<number> {
  return Number(/^shoal_store_bytes (\d+)/m.exec(await relay.metrics())?.[1] ?? NaN);
}

/** Resolves once `db` holds a patient called `name` (30 s at most). */
export function patientNamed(db: Database<{ patients: Patient }>, name: string) {
  return waitFor(
    db.patients.live((q) => q.where("name").equals(name).toArray()),
    (r) => r.length > 0,
    30_000,
    `${name} on ${db.deviceId.slice(0, 8)}`,
  );
}
