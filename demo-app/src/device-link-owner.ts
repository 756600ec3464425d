import type { MemberView, SpaceId } from "@shoal/client";
import type { ClinicDatabase } from "./db.ts";

/**
 * Whose device this one became by joining a clinic, when it joined as another device of someone
 * already on the staff list (a link from "Link another device of mine", `db.linkDevice`); undefined when
 * it joined as a new colleague. Such a link reads like any invitation (`#invite=`) until it is redeemed;
 * afterwards the staff list (`db.members`) tells: this device's person has other devices too.
 *
 * @example
 * const owner = await deviceLinkOwner(db, clinicId);
 * if (owner) say(`This device is now another device of ${owner.name}.`);
 */
export function deviceLinkOwner(db: ClinicDatabase, clinicId: SpaceId): Promise<MemberView | undefined> {
  return new Promise((resolve, reject) => {
    const sub = db.members(clinicId).subscribe({
      next: (view) => {
        // The first reading is all this needs; the live query may emit before `sub` is assigned.
        queueMicrotask(() => sub.unsubscribe());
        const me = view.members.find((m) => m.you);
        resolve(me && me.devices.length > 1 ? me : undefined);
      },
      error: reject,
    });
  });
}
