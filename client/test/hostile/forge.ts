// Hostile commits as any holder of a space key can make them: plaintexts built by hand (PROTOCOL.md
// 3.2), so nothing of the writer's checks applies, sealed with the space key, signed with the
// forger's device key and chained to its previous commit, then placed in the forger's own replica as if it had made them, so its
// ordinary sync uploads them byte for byte (to the relay, to a peer, into a bundle).
import * as A from "@automerge/automerge";
import type { DatabaseCore } from "../../src/index.ts";
import { sha256 } from "../../src/crypto/seal.ts";
import { fromHex } from "../../src/protocol/index.ts";
import { sealAs } from "../seal-as.ts";
import { uuidv7 } from "../../src/ids.ts";
import type { SpaceId } from "../../src/types.ts";

/** One record change of a forged commit. `createJson` is the creation's JSON text, used verbatim. */
export interface ForgedRecord {
  id?: string;
  op?: "insert" | "update" | "delete";
  collection?: string;
  paths?: string[];
  changes?: Uint8Array[];
  createJson?: string;
}

const enc = new TextEncoder();

/** A commit plaintext (PROTOCOL.md 3.2) holding exactly the given records. */
export function forgedPlaintext(records: ForgedRecord[], at = Date.now()): Uint8Array {
  const out: number[] = [1];
  const u16 = (x: number) => out.push((x >>> 8) & 255, x & 255);
  const u32 = (x: number) => out.push((x >>> 24) & 255, (x >>> 16) & 255, (x >>> 8) & 255, x & 255);
  const bytes = (b: Uint8Array) => {
    for (const x of b) out.push(x);
  };
  u32(Math.floor(at / 2 ** 32));
  u32(at >>> 0);
  u32(records.length);
  for (const r of records) {
    bytes(fromHex((r.id ?? uuidv7(Date.now())).replaceAll("-", ""), 16));
    out.push(["insert", "update", "delete"].indexOf(r.op ?? "insert"));
    const coll = enc.encode(r.collection ?? "patients");
    u16(coll.length);
    bytes(coll);
    const paths = r.paths ?? [];
    u16(paths.length);
    for (const p of paths) {
      const b = enc.encode(p);
      u16(b.length);
      bytes(b);
    }
    const changes = r.changes ?? [];
    u32(changes.length);
    for (const ch of changes) {
      u32(ch.length);
      bytes(ch);
    }
    const create = r.createJson === undefined ? new Uint8Array(0) : enc.encode(r.createJson);
    u32(create.length);
    bytes(create);
  }
  return Uint8Array.from(out);
}

/** The creation JSON of a record whose field `deep` nests `depth` arrays. */
export function deepCreation(depth: number): string {
  return `[{"deep":${"[".repeat(depth)}${"]".repeat(depth)},"name":"deep","notes":""},["notes"],[]]`;
}

/** One Automerge change, with no dependencies, setting `keys` map keys at the root. */
export function manyKeysChange(keys: number): Uint8Array {
  const doc = A.change(A.init<Record<string, number>>(), { time: 0 }, (d) => {
    for (let i = 0; i < keys; i++) d[`k${i}`] = i;
  });
  return A.getLastLocalChange(doc)!;
}

/**
 * Seals the plaintexts as the next commits of `db`'s own device in `space` (chained to its last one)
 * and records them in its replica as made and sealed there (an empty stand-in in its log), without
 * applying them: its sync sends them like any of its commits. Returns their sealed bytes.
 */
export async function forgeCommits(
  db: Pick<DatabaseCore, "replica" | "deviceId">,
  space: SpaceId,
  plaintexts: Uint8Array[],
): Promise<Uint8Array[]> {
  const dexie = db.replica.dexie;
  const key = (await dexie.table("_spaces").get(space)).key as Uint8Array;
  const identity = db.replica.identity;
  if (!identity) throw new Error("the forger has no device keys");
  const have = ((await dexie.table("_vectors").get([space, db.deviceId]))?.seq as number | undefined) ?? 0;
  let prev: Uint8Array | null =
    have > 0
      ? ((await db.replica.dexie.table("_sealed").get([space, db.deviceId, have]))?.bytes ?? null)
      : null;
  if (have > 0 && !prev) throw new Error("the forger's previous commit is not sealed yet: sync it first");
  const out: Uint8Array[] = [];
  let seq = have;
  for (const plaintext of plaintexts) {
    seq++;
    prev = await sealAs(
      identity,
      key,
      { space: fromHex(space, 16), seq, prevHash: prev ? await sha256(prev) : new Uint8Array(32) },
      plaintext,
    );
    out.push(prev);
    await dexie.table("_sealed").put({ space, device: db.deviceId, seq, bytes: prev });
    // A stand-in in the forger's log (never applied anywhere): its sync takes sealed bytes for held commits.
    await dexie.table("_commits").add({
      id: `${space}.${db.deviceId}.${seq}`,
      space,
      device: db.deviceId,
      seq,
      at: 0,
      changes: [],
      records: [],
    });
  }
  await dexie.table("_vectors").put({ space, device: db.deviceId, seq });
  return out;
}
