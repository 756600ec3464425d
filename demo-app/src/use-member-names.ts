import { useLiveQuery } from "@shoal/client/react";
import type { ClinicDatabase } from "./db.ts";
import { safeDeviceName } from "./safe-values.ts";
import { useMembers } from "./use-members.ts";

/** Who made a change: the person (from the membership log) and what the device is called. */
export interface DeviceOwner {
  /** The person's display name, or the device's own name in an open clinic. */
  readonly person: string;
  /** The name the device gave itself in an open clinic, if any. */
  readonly deviceName?: string;
  /** Whether the device was removed from the clinic (its later changes are dropped everywhere). */
  readonly removed: boolean;
}

/**
 * Device id -> who it belongs to, for one clinic (live: a device that joins appears). Members' names come
 * from the membership log; the device names an open clinic's devices recorded fill in the rest, so
 * changes made before the clinic had members still show a name.
 */
export function useMemberNames(db: ClinicDatabase, clinicId: string): ReadonlyMap<string, DeviceOwner> {
  const rows = useLiveQuery(() => db.deviceNames.where("clinic").equals(clinicId).toArray(), [db, clinicId]);
  const members = useMembers(db, clinicId);
  const owners = new Map<string, DeviceOwner>();
  const named = new Map((rows ?? []).map(safeDeviceName).map((r) => [r.deviceId, r.name]));
  for (const [device, name] of named) owners.set(device, { person: name, deviceName: name, removed: false });
  for (const m of members?.members ?? [])
    for (const d of m.devices)
      owners.set(d.device, { person: m.name, ...optionalName(named.get(d.device)), removed: false });
  for (const device of members?.removedDevices ?? []) {
    const known = owners.get(device);
    owners.set(device, {
      person: known?.person ?? "Removed member",
      ...optionalName(known?.deviceName),
      removed: true,
    });
  }
  return owners;
}

function optionalName(name: string | undefined): { deviceName?: string } {
  return name === undefined ? {} : { deviceName: name };
}
