import { fromHex, toHex } from "../src/protocol/index.ts";
import { commitId, type Commit } from "../src/replica/commit.ts";
import { encodeCommitPlaintext } from "../src/sealing/commit-codec.ts";
import type { RecordId, SpaceId } from "../src/types.ts";
import { sealAs, testSigningIdentity, type SigningIdentity } from "./seal-as.ts";

/** One crafted commit: as the replica stores it, and sealed as the relay stores it. */
export interface CraftedCommit {
  commit: Commit;
  sealed: Uint8Array;
}

/**
 * The made-up devices' signing identities, derived once per test file: a call for the same numbers
 * derives the same keys (`testSigningIdentity` is a function of its number), and deriving 10,000 of
 * them was most of the cost of a call (each took more WebCrypto operations than sealing its commit).
 */
const identities = new Map<number, Promise<SigningIdentity>>();
function craftedIdentity(n: number): Promise<SigningIdentity> {
  let identity = identities.get(n);
  if (!identity) identities.set(n, (identity = testSigningIdentity(n)));
  return identity;
}

/**
 * Test support: the first commit of each of `count` made-up devices of `space`, each inserting one
 * patient `{ name: "<prefix><i>", ward: "W", notes: "" }`, sealed for real with the space key and signed
 * by a device key derived from `i` (as any member could). Device and record ids are derived from `i`, so
 * runs are reproducible.
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
  const out: CraftedCommit[] = new Array(count);
  const craft = async (i: number): Promise<void> => {
    const hex = (0xd0000000 + i).toString(16).padStart(8, "0");
    const identity = await craftedIdentity(0xd0000000 + i);
    const device = identity.device;
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
    const sealed = await sealAs(
      identity,
      spaceKey,
      { space: spaceBytes, seq: 1, prevHash: new Uint8Array(32) },
      encodeCommitPlaintext(commit),
    );
    out[i] = { commit, sealed };
  };
  // Several in flight: WebCrypto's key derivation, signing and sealing run on Node's thread pool, so
  // this uses every core (10,000 devices one at a time took a minute of a 2-core machine's test run).
  let next = 0;
  const worker = async () => {
    while (next < count) await craft(next++);
  };
  await Promise.all(Array.from({ length: Math.min(16, count) }, worker));
  if (new Set(out.map((c) => toHex(c.sealed.subarray(17, 33)))).size !== count)
    throw new Error("ids collide");
  return out;
}
