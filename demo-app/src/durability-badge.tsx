import type { RecordId } from "@shoal/client";
import { useLiveQuery } from "@shoal/client/react";
import type { ClinicDatabase } from "./db.ts";

type Where = "local" | "relay" | "received";

/**
 * Where the patient's latest change is: only on this device (saved, waiting for the relay), or
 * acknowledged by the relay. A change made on another device reached this one through the relay, so
 * the relay has it. Live: reading history and acknowledgements inside the query re-runs it when the
 * relay acknowledges.
 */
export function DurabilityBadge({ db, id }: { db: ClinicDatabase; id: RecordId }) {
  const where = useLiveQuery(async (): Promise<Where | null> => {
    const last = (await db.patients.history(id)).at(-1);
    if (!last) return null;
    if (last.device !== db.deviceId) return "received";
    return (await db.durability(last.commit)).relay ? "relay" : "local";
  }, [db, id]);
  if (!where) return null;
  const text =
    where === "local"
      ? "Latest change only on this device"
      : where === "relay"
        ? "Latest change safe on the relay"
        : "Latest change synced from another device";
  return (
    <span className={`badge ${where === "local" ? "badge-local" : "badge-safe"}`} data-testid="durability">
      {text}
    </span>
  );
}
