import { RejoinPending, type SpaceId } from "@shoal/client";
import type { ClinicDatabase } from "./db.ts";

/**
 * Records this device's name in a clinic, once: history lists opaque device ids, and this record is how
 * other devices' audit views show a name instead.
 */
export async function registerMember(db: ClinicDatabase, clinicId: SpaceId, name: string): Promise<void> {
  try {
    await write(db, clinicId, name);
  } catch (e) {
    // Joined again after leaving: this device's record is among its own commits that sync brings back.
    if (!(e instanceof RejoinPending)) throw e;
  }
}

async function write(db: ClinicDatabase, clinicId: SpaceId, name: string): Promise<void> {
  await db.transact(async (tx) => {
    const existing = await db.members.where("deviceId").equals(db.deviceId).toArray();
    const mine = existing.find((m) => m.clinic === clinicId);
    if (mine) {
      if (mine.name !== name) await tx.members.update(mine.id, (m) => void (m.name = name));
    } else {
      await tx.members.insert({ clinic: clinicId, deviceId: db.deviceId, name }, { space: clinicId });
    }
  });
}
