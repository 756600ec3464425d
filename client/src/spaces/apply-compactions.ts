import { sha256 } from "../crypto/sha256.ts";
import type { Replica } from "../replica/replica.ts";
import type { SpaceRow } from "../replica/stored-rows.ts";
import type { DeviceId, SpaceId } from "../types.ts";
import { countedCompactions } from "../members/counted-in-own-past.ts";
import type { MembershipOp } from "../members/membership-op.ts";
import type { MemberRow } from "../replica/stored-rows.ts";
import { creatorKeyOf, opsOf } from "./membership-log.ts";

interface SealedRow {
  space: SpaceId;
  device: DeviceId;
  seq: number;
  bytes: Uint8Array;
  source?: string;
  hash?: Uint8Array;
}

const EMPTY = new Uint8Array(0);

/** Whether sealed bytes are a membership commit (header epoch, bytes 41 to 44, is 0xffffffff). */
function isMembershipCommit(bytes: Uint8Array): boolean {
  return (
    bytes.length >= 45 && bytes[41] === 0xff && bytes[42] === 0xff && bytes[43] === 0xff && bytes[44] === 0xff
  );
}

/**
 * Applies the space's counted `compact` operations this device has not applied yet (called whenever
 * membership operations were absorbed, PROTOCOL.md 12): raises the space's compaction floor to their
 * vectors, and drops the sealed copies (`_sealed`) of the commits at or below it. Each device's commit
 * at the floor keeps only its hash (the device's next commit chains to it); the ones below go whole.
 * The commit log (`_commits`: the plaintext history, erased records already purged from it) stays:
 * history older than a compaction stays on the devices that have it. Nothing at or below the floor is
 * forwarded from here any more (`SpaceSealer.sealedRange` says `Compacted`): a peer or file that needs
 * it gets the relay's snapshot instead.
 */
export async function applyCompactions(replica: Replica, space: SpaceId): Promise<void> {
  const { dexie } = replica;
  const spacesT = dexie.table<SpaceRow>("_spaces");
  const sealedT = dexie.table<SealedRow>("_sealed");
  const counted = await countedCompactionsOf(replica, space);
  if (counted.length === 0) return;
  const row = await spacesT.get(space);
  if (!row) return;
  const applied = new Set(row.compaction?.applied ?? []);
  const fresh = counted.filter((c) => !applied.has(c.id));
  if (fresh.length === 0) return;
  const floor: Record<string, number> = { ...(row.compaction?.floor ?? {}) };
  for (const c of fresh)
    for (const [d, seq] of Object.entries(c.vector)) floor[d] = Math.max(floor[d] ?? 0, seq);
  // The heads' hashes first: WebCrypto cannot be awaited inside an IndexedDB transaction.
  const heads = new Map<string, SealedRow>();
  for (const [d, seq] of Object.entries(floor)) {
    const head = await sealedT.get([space, d, seq]);
    if (head && !head.hash && !isMembershipCommit(head.bytes))
      heads.set(d, { ...head, bytes: EMPTY, hash: await sha256(head.bytes) });
  }
  await dexie.transaction("rw", [spacesT, sealedT], async () => {
    for (const [d, seq] of Object.entries(floor)) {
      // Membership commits stay: they are the log (in clear, no record content), which an audit file
      // or a bundle still carries whole; the relay keeps them too.
      await sealedT
        .where("[space+device+seq]")
        .between([space, d, 0], [space, d, seq], true, false)
        .filter((r) => !isMembershipCommit(r.bytes))
        .delete();
      const head = heads.get(d);
      if (head) await sealedT.put(head);
    }
    const now = await spacesT.get(space);
    if (!now) return;
    await spacesT.put({
      ...now,
      compaction: { ...now.compaction, floor, applied: [...applied, ...fresh.map((c) => c.id)] },
    });
  });
}

/**
 * The counted `compact` operations of a space as this device holds them (ids, with their actions),
 * judged each in its own causal past (`countedCompactions`).
 */
export async function countedCompactionsOf(
  replica: Replica,
  space: SpaceId,
): Promise<{ id: string; vector: Record<string, number>; snapshot: string }[]> {
  const { dexie } = replica;
  const row = await dexie.table<SpaceRow>("_spaces").get(space);
  const creator = creatorKeyOf(row);
  if (!creator) return [];
  const rows = await dexie.table<MemberRow>("_members").where("space").equals(space).toArray();
  if (!rows.some((r) => r.op.includes('"kind":"compact"'))) return [];
  const ops = opsOf(rows);
  return countedCompactions(ops, creator).map((id) => {
    const a = ops.get(id)!.action as Extract<MembershipOp["action"], { kind: "compact" }>;
    return { id, vector: a.vector, snapshot: a.snapshot };
  });
}
