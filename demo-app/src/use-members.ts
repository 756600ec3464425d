import type { MembersView } from "@shoal/client";
import { useEffect, useState } from "react";
import type { ClinicDatabase } from "./db.ts";

/**
 * The clinic's members, roles, devices and invitations (`db.members`), live: undefined until the first
 * reading. A clinic without a membership log reads `managed: false`, and every device of it may write.
 */
export function useMembers(db: ClinicDatabase, clinicId: string): MembersView | undefined {
  const [view, setView] = useState<{ clinic: string; members: MembersView } | undefined>();
  useEffect(() => {
    const sub = db.members(clinicId as Parameters<ClinicDatabase["members"]>[0]).subscribe({
      next: (members) => setView({ clinic: clinicId, members }),
      // The view only reads this device's IndexedDB; a failure there shows elsewhere too.
      error: () => setView(undefined),
    });
    return () => sub.unsubscribe();
  }, [db, clinicId]);
  // After switching clinics, the previous clinic's members are not this one's.
  return view?.clinic === clinicId ? view.members : undefined;
}
