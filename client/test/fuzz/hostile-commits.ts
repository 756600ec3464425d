import * as A from "@automerge/automerge";
import { sha256 } from "../../src/crypto/seal.ts";
import type { DeviceIdentity } from "../../src/identity/device-identity.ts";
import { identityFromSeed } from "../../src/identity/identity-from-seed.ts";
import { fromHex } from "../../src/protocol/index.ts";
import { commitId, type Commit, type RecordChange } from "../../src/replica/commit.ts";
import { encodeCommitPlaintext } from "../../src/sealing/commit-codec.ts";
import type { seededRandom } from "../../src/testing/seeded-random.ts";
import type { DeviceId, RecordId, SpaceId } from "../../src/types.ts";

import { sealAs as signedSeal } from "../seal-as.ts";

type Rnd = ReturnType<typeof seededRandom>;
const enc = new TextEncoder();

/**
 * Every row a hostile member writes in a poison commit carries a `name` starting with this, so the
 * fuzzer can tell that no honest replica ever shows poison (see `HostileMember`).
 */
export const POISON_PREFIX = "poison:";

/** A device id (32 hex) from the seeded generator. */
export function seededDevice(rnd: Rnd): DeviceId {
  let s = "";
  for (let i = 0; i < 32; i++) s += "0123456789abcdef"[rnd.int(16)];
  return s as DeviceId;
}

/** A record id (UUID shape, version 7 nibble) from the seeded generator. */
export function seededRecord(rnd: Rnd): RecordId {
  const h = seededDevice(rnd);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-7${h.slice(13, 16)}-${h.slice(16, 20)}-${h.slice(20)}` as RecordId;
}

// The keys of every device a hostile member made up (or its own), by device id: it can sign for those.
const identities = new Map<string, DeviceIdentity>();
let impostor: Promise<DeviceIdentity> | undefined;

/**
 * A fresh made-up device with keys, from the seeded generator (the same seed gives the same device), that
 * `sealAs` can then sign for.
 */
export async function seededIdentity(rnd: Rnd): Promise<DeviceIdentity> {
  const seed = new Uint8Array(32);
  for (let i = 0; i < 32; i++) seed[i] = rnd.int(256);
  const identity = await identityFromSeed(seed);
  identities.set(identity.device, identity);
  return identity;
}

/** Lets `sealAs` sign as `identity`'s device (the hostile member's own, for one). */
export function canSignAs(identity: DeviceIdentity): void {
  identities.set(identity.device, identity);
}

/**
 * Seals a commit exactly as `SpaceSealer` does (routing header as AAD, canonical plaintext, synthetic
 * IV, signature), under any device id: the space key is all it takes to seal, but only a device whose
 * keys the forger holds (`seededIdentity`, `canSignAs`) gets a commit its receivers accept; any other
 * device's commit is signed by an impostor key and names it as author, so receivers refuse it as
 * `SignatureInvalid`. `prev` is the sealed commit before it (null for seq 1): the chain hash is computed
 * from it. `plaintext` replaces the canonical encoding for content the encoder cannot produce (see
 * `deepPlaintext`).
 */
export async function sealAs(
  spaceKey: Uint8Array,
  commit: Commit,
  prev: Uint8Array | null,
  plaintext: Uint8Array = encodeCommitPlaintext(commit),
): Promise<Uint8Array> {
  const known = identities.get(commit.device);
  const signer = known ?? (await (impostor ??= identityFromSeed(new Uint8Array(32).fill(0xee))));
  const device = fromHex(commit.device, 16);
  return signedSeal(
    signer,
    spaceKey,
    {
      space: fromHex(commit.space, 16),
      seq: commit.seq,
      prevHash: prev ? await sha256(prev) : new Uint8Array(32),
    },
    plaintext,
    (h) => ({ ...h, device }),
  );
}

/** A one-record commit, seq `seq` of `device`. */
export function commitOf(space: SpaceId, device: DeviceId, seq: number, change: RecordChange): Commit {
  return {
    id: commitId(space, device, seq),
    space,
    device,
    seq,
    at: 1_700_000_000_000 + seq,
    changes: [change],
  };
}

/** A patient-shaped row, as the fuzz app's own inserts look. */
function patient(name: string): Record<string, unknown> {
  return { balance: 0, kind: "patient", name, notes: "", visits: 0, ward: "M" };
}

/** A lazy insert (creation form), as an honest device sends it. */
export function creationInsert(record: RecordId, json: Record<string, unknown>): RecordChange {
  const sorted = Object.fromEntries(Object.entries(json).sort(([a], [b]) => (a < b ? -1 : 1)));
  return {
    record,
    collection: "patients",
    op: "insert",
    paths: Object.keys(sorted),
    changes: [],
    // The fuzz schema's text and counter fields (fuzz-driver.ts), marked as an honest device marks them.
    create: {
      json: sorted,
      text: ["notes"].filter((k) => k in sorted),
      counters: ["balance", "visits"].filter((k) => typeof sorted[k] === "number"),
    },
  };
}

/** An insert made with Automerge at once (as for values JSON cannot carry), whose root is `root`. */
export function automergeInsert(
  record: RecordId,
  actor: string,
  root: Record<string, unknown>,
): RecordChange {
  // `A.from` rather than assignments in `A.change`: 1.4 s instead of 4.6-7.4 s for 40,000 keys. Its
  // change carries the wall-clock time, the one unseeded byte of a hostile commit.
  const doc = A.from(root, { actor });
  return {
    record,
    collection: "patients",
    op: "insert",
    paths: Object.keys(root).slice(0, 16),
    changes: A.getAllChanges(doc),
  };
}

const DEEP = "\u0000deep\u0000";

/**
 * Item 1: a commit (one lazy insert) whose creation JSON nests `depth` arrays, and its plaintext.
 * `JSON.stringify` itself overflows the stack long before 20,000 levels, so the commit is encoded with
 * a placeholder string and the nested arrays are spliced into the creation's JSON text (the last field
 * of the plaintext, after its u32 length), as a hand-made client would write them.
 */
export function deepCommit(
  space: SpaceId,
  device: DeviceId,
  record: RecordId,
  depth: number,
): { commit: Commit; plaintext: Uint8Array } {
  const commit = commitOf(
    space,
    device,
    1,
    creationInsert(record, { ...patient(`${POISON_PREFIX}deep`), deep: DEEP }),
  );
  const plain = encodeCommitPlaintext(commit);
  const c = commit.changes[0]!.create!;
  const shallow = enc.encode(JSON.stringify([c.json, c.text, c.counters]));
  const deep = enc.encode(
    JSON.stringify([c.json, c.text, c.counters]).replace(
      JSON.stringify(DEEP),
      "[".repeat(depth) + "]".repeat(depth),
    ),
  );
  const head = plain.subarray(0, plain.length - shallow.length - 4);
  const out = new Uint8Array(head.length + 4 + deep.length);
  out.set(head);
  new DataView(out.buffer).setUint32(head.length, deep.length);
  out.set(deep, head.length + 4);
  return { commit, plaintext: out };
}

/** Item 1 (and 7): one Automerge change setting `keys` map keys. */
export function hugeChange(record: RecordId, actor: string, keys: number): RecordChange {
  const root: Record<string, unknown> = patient(`${POISON_PREFIX}huge`);
  for (let i = 0; i < keys; i++) root[`k${i}`] = i;
  return automergeInsert(record, actor, root);
}

/** Item 2: a remote creation whose content names another record's id. */
export function idCreation(record: RecordId, victim: RecordId): RecordChange {
  return creationInsert(record, { ...patient(`${POISON_PREFIX}creation-id`), id: victim });
}

/** Item 2: an Automerge insert whose root has an `id` naming another record. */
export function idRoot(record: RecordId, actor: string, victim: RecordId): RecordChange {
  return automergeInsert(record, actor, { ...patient(`${POISON_PREFIX}root-id`), id: victim });
}

/** Item 4: a harmless, valid insert (one per fake device): these rows must reach every replica. */
export function manyDeviceInsert(record: RecordId, i: number): RecordChange {
  return creationInsert(record, patient(`many:${i}`));
}

/**
 * Item 3: a different commit for the same (device, seq) as `original`: same changes, another time, so
 * different bytes under the same routing header (what a member with the key can forge for any device).
 */
export function twinOf(original: Commit): Commit {
  return { ...original, at: original.at + 1 };
}
