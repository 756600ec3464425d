import type { Dexie } from "dexie";
import type { DeviceId, SpaceId, VersionVector } from "../types.ts";

interface AckRow {
  space: SpaceId;
  device: DeviceId;
  seq: number;
}

/**
 * Records sequences the relay acknowledged as durably stored, never lowering one (acks can arrive
 * out of order across reconnects, and a wiped relay's lower vector must not undo a receipt).
 */
export async function recordAcks(dexie: Dexie, space: SpaceId, entries: readonly { device: DeviceId; seq: number }[]): Promise<void> {
  if (entries.length === 0) return;
  const t = dexie.table<AckRow>("_acks");
  await dexie.transaction("rw", t, async () => {
    const cur = await t.bulkGet(entries.map((e) => [space, e.device]));
    const up = entries.filter((e, i) => (cur[i]?.seq ?? 0) < e.seq).map((e) => ({ space, device: e.device, seq: e.seq }));
    if (up.length > 0) await t.bulkPut(up);
  });
}

/** Per space, per device: the highest sequence the relay acknowledged. */
export async function readAcks(dexie: Dexie): Promise<VersionVector> {
  const v: VersionVector = {};
  for (const r of await dexie.table<AckRow>("_acks").toArray()) (v[r.space] ??= {})[r.device] = r.seq;
  return v;
}
