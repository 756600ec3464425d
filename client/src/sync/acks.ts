import type { Dexie } from "dexie";
import type { DeviceId, SpaceId, VersionVector } from "../types.ts";

interface AckRow {
  space: SpaceId;
  device: DeviceId;
  seq: number;
}

/**
 * Records sequences the relay acknowledged as durably stored, never lowering one (acks can arrive
 * out of order across reconnects, and a wiped relay's lower vector must not undo a receipt), and never
 * beyond what this replica holds: a relay claiming commits that do not exist here proves nothing.
 */
export async function recordAcks(
  dexie: Dexie,
  space: SpaceId,
  entries: readonly { device: DeviceId; seq: number }[],
): Promise<void> {
  if (entries.length === 0) return;
  const t = dexie.table<AckRow>("_acks");
  const vectors = dexie.table<AckRow>("_vectors");
  const keys = entries.map((e) => [space, e.device]);
  // Held sequences are read before, not inside, the write: they only grow, so an earlier reading is a
  // safe bound, and a write transaction over `_vectors` would hold up the next local commit, which
  // takes its sequence number there.
  const held = await vectors.bulkGet(keys);
  await dexie.transaction("rw", t, async () => {
    const cur = await t.bulkGet(keys);
    const up = entries
      .map((e, i) => ({ space, device: e.device, seq: Math.min(e.seq, held[i]?.seq ?? 0) }))
      .filter((e, i) => (cur[i]?.seq ?? 0) < e.seq);
    if (up.length > 0) await t.bulkPut(up);
  });
}

/** Per space, per device: the highest sequence the relay acknowledged. */
export async function readAcks(dexie: Dexie): Promise<VersionVector> {
  const v: VersionVector = {};
  for (const r of await dexie.table<AckRow>("_acks").toArray()) (v[r.space] ??= {})[r.device] = r.seq;
  return v;
}
