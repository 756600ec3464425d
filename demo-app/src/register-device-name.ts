import { RejoinPending, type SpaceId } from "@shoal/client";
import type { ClinicDatabase } from "./db.ts";

/**
 * Records this device's name in an open clinic, once: history lists opaque device ids, and this record
 * is how other devices' audit views show a name instead. Clinics with members carry names in their
 * membership log, so nothing is written there (a reader could not, and need not).
 */
export async function registerDeviceName(db: ClinicDatabase, clinicId: SpaceId, name: string): Promise<void> {
  try {
    await write(db, clinicId, name);
  } catch (e) {
    // Joined again after leaving: this device's record is among its own commits that sync brings back.
    if (!(e instanceof RejoinPending)) throw e;
  }
}

async function write(db: ClinicDatabase, clinicId: SpaceId, name: string): Promise<void> {
  await db.transact(async (tx) => {
    const existing = await db.deviceNames.where("deviceId").equals(db.deviceId).toArray();
    const mine = existing.find((m) => m.clinic === clinicId);
    if (mine) {
      if (mine.name !== name) await tx.deviceNames.update(mine.id, (m) => void (m.name = name));
    } else {
      await tx.deviceNames.insert({ clinic: clinicId, deviceId: db.deviceId, name }, { space: clinicId });
    }
  });
}
