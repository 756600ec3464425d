import { concatBytes } from "../crypto/bytes.ts";
import { deriveSnapshotKey } from "../crypto/keys.ts";
import { openSealedView, sealCommit } from "../crypto/seal.ts";
import { ByteWriter } from "../protocol/byte-writer.ts";
import { fromHex } from "../protocol/hex.ts";
import type { SpaceId } from "../types.ts";

const LABEL = new TextEncoder().encode("shoal/v1/snapshot");

/**
 * The additional data a snapshot is sealed with: its space and vector, so a relay cannot pass off a
 * snapshot as another space's or as covering other commits than it does.
 */
export function snapshotAad(space: SpaceId, vector: Record<string, number>): Uint8Array {
  const w = new ByteWriter(64);
  w.bytes(fromHex(space, 16));
  const devices = Object.keys(vector).sort();
  w.u32(devices.length);
  for (const d of devices) {
    w.bytes(fromHex(d, 16));
    w.u64(vector[d]!);
  }
  return concatBytes(LABEL, w.finish());
}

/** Seals a snapshot's plaintext under the space's snapshot key (padded, AES-256-GCM, random nonce). */
export async function sealSnapshot(
  spaceKey: Uint8Array,
  space: SpaceId,
  vector: Record<string, number>,
  plaintext: Uint8Array,
): Promise<Uint8Array> {
  const key = await deriveSnapshotKey(spaceKey, fromHex(space, 16));
  return sealCommit(key, snapshotAad(space, vector), plaintext);
}

/** Opens a sealed snapshot; throws `DecryptError` on a wrong key or altered bytes, space or vector. */
export async function openSnapshot(
  spaceKey: Uint8Array,
  space: SpaceId,
  vector: Record<string, number>,
  sealed: Uint8Array,
): Promise<Uint8Array> {
  const key = await deriveSnapshotKey(spaceKey, fromHex(space, 16));
  return openSealedView(key, snapshotAad(space, vector), sealed);
}
