import { useLiveQuery } from "@shoal/client/react";
import type { ClinicDatabase } from "./db.ts";
import { safeMember } from "./safe-values.ts";

/** Device id -> the name its user gave it, for one clinic (live: a device that joins appears). */
export function useMemberNames(db: ClinicDatabase, clinicId: string): ReadonlyMap<string, string> {
  const members = useLiveQuery(() => db.members.where("clinic").equals(clinicId).toArray(), [db, clinicId]);
  return new Map((members ?? []).map(safeMember).map((m) => [m.deviceId, m.name]));
}
