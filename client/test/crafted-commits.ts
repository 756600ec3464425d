import { deriveCommitKey, deriveNonceKey } from "../src/crypto/keys.ts";
import { sealCommit } from "../src/crypto/seal.ts";
import {
  COMMIT_FORMAT_VERSION,
  encodeCommitHeader,
  encodeSealedCommit,
  fromHex,
  toHex,
} from "../src/protocol/index.ts";
import { commitId, type Commit } from "../src/replica/commit.ts";
import { encodeCommitPlaintext } from "../src/sealing/commit-codec.ts";
import type { DeviceId, RecordId, SpaceId } from "../src/types.ts";

/** One crafted commit: as the replica stores it, and sealed as the relay stores it. */
export interface CraftedCommit {
  commit: Commit;
  sealed: Uint8Array;
}

/**
 * Test support: the first commit of each of `count` made-up devices of `space`, each inserting one
 * patient `{ name: "<prefix><i>", ward: "W", notes: "" }`, sealed for real with the space key (as any
 * member could). Device and record ids are derived from `i`, so runs are reproducible.
 *
 * @example
 * const crafted = await craftDeviceCommits(space.id, spaceKey, 10_000, "D");
 */
export async function craftDeviceCommits(
  space: SpaceId,
  spaceKey: Uint8Array,
  count: number,
  prefix: string,
): Promise<CraftedCommit[]> {
  const spaceBytes = fromHex(space, 16);
  const out: CraftedCommit[] = [];
  for (let i = 0; i < count; i++) {
    const hex = (0xd0000000 + i).toString(16).padStart(8, "0");
    const device = `${hex}${"00".repeat(12)}` as DeviceId;
    // A UUIDv7-shaped record id (version 7, variant 10), unique per device.
    const record = `01890000-0000-7000-8000-${hex}0000` as RecordId;
    const commit: Commit = {
      id: commitId(space, device, 1),
      space,
      device,
      seq: 1,
      at: 1_700_000_000_000 + i,
      changes: [
        {
          record,
          collection: "patients",
          op: "insert",
          paths: ["name", "notes", "ward"],
          changes: [],
          create: { json: { name: `${prefix}${i}`, notes: "", ward: "W" }, text: ["notes"], counters: [] },
        },
      ],
    };
    const deviceBytes = fromHex(device, 16);
    const header = {
      version: COMMIT_FORMAT_VERSION,
      space: spaceBytes,
      device: deviceBytes,
      seq: 1,
      epoch: 0,
      prevHash: new Uint8Array(32),
    };
    const body = await sealCommit(
      await deriveCommitKey(spaceKey, deviceBytes, 0),
      encodeCommitHeader(header),
      encodeCommitPlaintext(commit),
      await deriveNonceKey(spaceKey, deviceBytes, 0),
    );
    out.push({ commit, sealed: encodeSealedCommit(header, body) });
  }
  if (new Set(out.map((c) => toHex(c.sealed.subarray(17, 33)))).size !== count)
    throw new Error("ids collide");
  return out;
}
