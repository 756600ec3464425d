import { NotFound, NotPermitted } from "../errors.ts";
import { openName, sealName, type KeySet } from "../members/key-set.ts";
import type { MembershipOp } from "../members/membership-op.ts";
import { countedErasures } from "../members/counted-in-own-past.ts";
import type { MembershipState } from "../members/membership-state.ts";
import { purgeErased, type ErasedRow } from "../replica/erased.ts";
import type { Replica } from "../replica/replica.ts";
import type { DocRow, MemberRow, SpaceRow } from "../replica/stored-rows.ts";
import type { SpaceId } from "../types.ts";
import { ensureMembership } from "./manage-members.ts";
import { keySetOf, roleOf } from "./member-keys.ts";
import { appendMembershipOp, creatorKeyOf, opsOf, readMembership, stateOf } from "./membership-log.ts";

/** What `db.erasure(id)` shows: how far an erase has gone. */
export interface ErasureStatus {
  /** Current member devices of the record's space that wrote a signed receipt of the erase. */
  erased: number;
  /** Current member devices of the space (0 when this device knows of no erase of the record). */
  of: number;
  /**
   * Whether a counted `compact` operation this device applied covers every commit it held that carried
   * the record (`db.compact`, PROTOCOL.md 12): the relay that carried it out keeps no sealed copy of
   * them, and no device that applied it forwards one.
   */
  relayCompacted: boolean;
  /** The id of the `erase` operation, once this device applied it. */
  op?: string;
  /** The devices (ids) whose receipts count. */
  devices: string[];
}

/**
 * Erases a record for good (`db.<collection>.erase(id)`): writes a signed `erase` operation into its
 * space's membership log (an admin only; a space without a log gets one first when this device created
 * it), with the record id sealed under the space key. Applying it purges the record here at once, and
 * on every other device when the operation reaches it, by any transport (PROTOCOL.md 12). Returns the
 * operation's id. Erasing a record this device already erased returns the earlier operation.
 */
export async function eraseRecord(replica: Replica, collection: string, id: string): Promise<string> {
  replica.assertOpen();
  const { dexie } = replica;
  const done = await dexie.table<ErasedRow, string>("_erased").get(id);
  if (done) return done.op;
  const doc = await dexie.table<DocRow, string>("_docs").get(id);
  if (!doc || doc.collection !== collection) throw new NotFound(`No record ${id} in "${collection}".`);
  const space = doc.space;
  let state = await readMembership(dexie, space);
  if (!state) {
    try {
      state = await ensureMembership(replica, space);
    } catch (e) {
      if (e instanceof NotPermitted)
        throw new NotPermitted(
          "not-admin",
          "Only an admin can erase a record, and this space has no members yet: its creator's device can.",
        );
      throw e;
    }
  }
  if (roleOf(state, replica.device)?.role !== "admin")
    throw new NotPermitted("not-admin", "Only an admin can erase a record.");
  const row = await dexie.table<SpaceRow>("_spaces").get(space);
  if (!row) throw new NotFound(`No space ${space} on this device.`);
  const record = await sealName(id, keySetOf(row), row.epoch ?? 0, space);
  const { id: op } = await appendMembershipOp(replica, space, { kind: "erase", record });
  return op;
}

/** Per replica, spaces whose erasures are being applied -> whether to look again when done. */
const applying = new WeakMap<Replica, Map<string, boolean>>();

/**
 * Applies the space's counted `erase` operations this device has not applied yet (called whenever
 * membership operations were absorbed): opens each one's record id, purges the record and tombstones
 * its id (`purgeErased`), then writes this device's signed receipt of each erase it applied, if it is a
 * current member device and has not written one yet.
 */
export async function applyErasures(replica: Replica, space: SpaceId, keys: KeySet): Promise<void> {
  let mine = applying.get(replica);
  if (!mine) applying.set(replica, (mine = new Map()));
  if (mine.has(space)) return void mine.set(space, true);
  try {
    for (let pass = 0; pass < 3; pass++) {
      mine.set(space, false);
      await applyOnce(replica, space, keys);
      if (!mine.get(space)) break;
    }
  } finally {
    mine.delete(space);
  }
}

async function applyOnce(replica: Replica, space: SpaceId, keys: KeySet): Promise<void> {
  const { dexie } = replica;
  const [row, rows] = await Promise.all([
    dexie.table<SpaceRow>("_spaces").get(space),
    dexie.table<MemberRow>("_members").where("space").equals(space).toArray(),
  ]);
  const creator = creatorKeyOf(row);
  if (!row || !creator || rows.length === 0) return;
  if (!rows.some((r) => r.op.includes('"kind":"erase"'))) return;
  const ops = opsOf(rows);
  const counted = countedErasures(ops, creator);
  if (counted.length === 0) return;
  const done = new Set(
    (await dexie.table<ErasedRow, string>("_erased").where("space").equals(space).toArray()).map((r) => r.op),
  );
  const fresh: { id: string; op: string }[] = [];
  for (const op of counted) {
    if (done.has(op)) continue;
    const action = ops.get(op)!.action as Extract<MembershipOp["action"], { kind: "erase" }>;
    const id = await openName(action.record, keys, space);
    if (id === undefined) continue; // sealed under a key this device does not hold yet
    fresh.push({ id, op });
    done.add(op);
  }
  if (fresh.length > 0) await purgeErased(replica, space, fresh);
  const state = stateOf(row, rows);
  if (!replica.identity || !state?.deviceOwner.has(replica.device)) return;
  const receipted = new Set(
    [...ops.values()]
      .filter((o) => o.author === replica.device && o.action.kind === "erase-receipt")
      .map((o) => (o.action as { erase: string }).erase),
  );
  for (const op of counted)
    if (done.has(op) && !receipted.has(op))
      await appendMembershipOp(replica, space, { kind: "erase-receipt", erase: op });
}

/**
 * How far the erase of record `id` has gone, as this device knows it (`db.erasure(id)`): reads only
 * IndexedDB, so a live query re-runs when a receipt or a membership change arrives.
 */
export async function readErasure(replica: Replica, id: string): Promise<ErasureStatus> {
  const { dexie } = replica;
  const row = await dexie.table<ErasedRow, string>("_erased").get(id);
  if (!row) return { erased: 0, of: 0, relayCompacted: false, devices: [] };
  // Dexie promises awaited one by one: a live query stops observing after any other await (browsers).
  const spaceRow = await dexie.table<SpaceRow>("_spaces").get(row.space);
  const rows = await dexie.table<MemberRow>("_members").where("space").equals(row.space).toArray();
  const state: MembershipState | undefined = stateOf(spaceRow, rows);
  const current = new Set(state?.deviceOwner.keys() ?? []);
  const devices = new Set<string>();
  for (const op of opsOf(rows).values()) {
    const a = op.action;
    if (a.kind === "erase-receipt" && a.erase === row.op && current.has(op.author)) devices.add(op.author);
  }
  const floor = spaceRow?.compaction?.floor;
  const relayCompacted =
    floor !== undefined &&
    row.held !== undefined &&
    Object.entries(row.held).every(([d, seq]) => (floor[d] ?? 0) >= seq);
  return {
    erased: devices.size,
    of: current.size,
    relayCompacted,
    op: row.op,
    devices: [...devices].sort(),
  };
}
