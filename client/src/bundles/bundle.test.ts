import { describe, expect, it } from "vitest";
import { sha256 } from "../crypto/seal.ts";
import { InvalidBundle } from "../errors.ts";
import { encodeSealedCommit, fromHex } from "../protocol/index.ts";
import type { SpaceId } from "../types.ts";
import { BUNDLE_MAGIC, decodeBundle, encodeBundle } from "./bundle.ts";

const space = "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a" as SpaceId;
const other = "6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b" as SpaceId;
const devA = "00112233445566778899aabbccddeeff";
const devB = "ffeeddccbbaa99887766554433221100";

/**
 * A structurally valid sealed commit (the bundle codec never opens bodies nor checks signatures, so the
 * author key and signature are fillers): a body of `size` bytes.
 */
function sealed(device: string, seq: number, size = 40, inSpace: SpaceId = space): Uint8Array {
  const body = new Uint8Array(size).map((_, i) => (seq * 31 + i) & 0xff);
  const prevHash = seq === 1 ? new Uint8Array(32) : new Uint8Array(32).fill(seq);
  const author = new Uint8Array(32).fill(0xcd);
  return encodeSealedCommit(
    { version: 2, space: fromHex(inSpace, 16), device: fromHex(device, 16), seq, epoch: 0, prevHash, author },
    body,
    new Uint8Array(64).fill(0xee),
  );
}

/** Interleaved, as a causal order would be: A1 B1 A2 A3 B2. */
const commits = [
  sealed(devA, 1),
  sealed(devB, 1, 60),
  sealed(devA, 2),
  sealed(devA, 3, 100),
  sealed(devB, 2),
];

/** Expects `fn` to throw an `InvalidBundle` with one of `reasons`. */
async function refused(fn: () => Promise<unknown>, ...reasons: string[]): Promise<InvalidBundle> {
  try {
    await fn();
  } catch (e) {
    expect(e).toBeInstanceOf(InvalidBundle);
    expect((e as InvalidBundle).code).toBe("InvalidBundle");
    if (reasons.length > 0) expect(reasons).toContain((e as InvalidBundle).reason);
    return e as InvalidBundle;
  }
  throw new Error("expected an InvalidBundle");
}

/** Offset of the header hash: fixed part, since count and entries, range count and entries. */
function headerHashAt(b: Uint8Array): number {
  const v = new DataView(b.buffer, b.byteOffset);
  const s = v.getUint16(34);
  const r = v.getUint16(36 + 24 * s);
  return 38 + 24 * s + 32 * r;
}

/** Applies `edit`, then recomputes both hashes: a well-sealed file whose content is wrong. */
async function resealed(b: Uint8Array, edit: (copy: Uint8Array) => void): Promise<Uint8Array> {
  const c = b.slice();
  edit(c);
  const at = headerHashAt(c);
  c.set(await sha256(c.subarray(0, at)), at);
  c.set(await sha256(c.subarray(0, c.length - 32)), c.length - 32);
  return c;
}

describe("bundle format", () => {
  it("round-trips a whole space, keeping the commits byte-identical and in file order", async () => {
    const file = await encodeBundle({ space, commits });
    const b = await decodeBundle(file);
    expect(b.space).toBe(space);
    expect(b.since).toBeUndefined();
    expect(b.complete).toBe(true);
    expect(b.ranges).toEqual([
      { device: devA, from: 1, to: 3 },
      { device: devB, from: 1, to: 2 },
    ]);
    expect(b.commits).toEqual(commits);
  });

  it("round-trips an incremental bundle made against a receiver's vector", async () => {
    const file = await encodeBundle({
      space,
      since: { [devA]: 1, [devB]: 0 },
      commits: [sealed(devA, 2), sealed(devB, 1)],
    });
    const b = await decodeBundle(file);
    expect(b.since).toEqual({ [devA]: 1 });
    expect(b.ranges).toEqual([
      { device: devA, from: 2, to: 2 },
      { device: devB, from: 1, to: 1 },
    ]);
    // Nothing to send is still a valid (empty) bundle.
    const empty = await decodeBundle(await encodeBundle({ space, since: { [devA]: 3 }, commits: [] }));
    expect(empty).toEqual({ space, since: { [devA]: 3 }, ranges: [], commits: [], complete: true });
  });

  it("lays out the header and end marker as PROTOCOL.md says", async () => {
    const file = await encodeBundle({ space, since: { [devA]: 1 }, commits: [sealed(devA, 2)] });
    const v = new DataView(file.buffer);
    expect([...file.subarray(0, 8)]).toEqual([0x89, 0x53, 0x48, 0x42, 0x0d, 0x0a, 0x1a, 0x0a]);
    expect(file[8]).toBe(1); // format version
    expect(file[9]).toBe(1); // flags: has since
    expect([...file.subarray(10, 26)]).toEqual([...fromHex(space)]);
    expect(v.getUint32(26) * 2 ** 32 + v.getUint32(30)).toBe(file.length);
    expect(v.getUint16(34)).toBe(1); // one since entry: device, seq
    expect([...file.subarray(36, 52)]).toEqual([...fromHex(devA)]);
    expect(v.getUint32(56)).toBe(1);
    expect(v.getUint16(60)).toBe(1); // one range: device, from 2, to 2
    expect(v.getUint32(82)).toBe(2); // low half of the u64 "from" at 78
    expect(v.getUint32(90)).toBe(2); // low half of the u64 "to" at 86
    expect(headerHashAt(file)).toBe(94);
    expect([...file.subarray(94, 126)]).toEqual([...(await sha256(file.subarray(0, 94)))]);
    expect(v.getUint32(126)).toBe(sealed(devA, 2).length);
    const end = file.length - 40;
    expect(v.getUint32(end)).toBe(0); // end marker: zero length, count, hash
    expect(v.getUint32(end + 4)).toBe(1);
    expect([...file.subarray(end + 8)]).toEqual([...(await sha256(file.subarray(0, end + 8)))]);
  });

  it("matches the worked example of PROTOCOL.md section 9", async () => {
    const commit = sealed(devA, 2, 28);
    expect(commit).toHaveLength(205);
    const file = await encodeBundle({ space, since: { [devA]: 1 }, commits: [commit] });
    expect(file).toHaveLength(375);
    expect([...file.subarray(26, 34)]).toEqual([0, 0, 0, 0, 0, 0, 0x01, 0x77]);
    expect([...file.subarray(126, 130)]).toEqual([0, 0, 0, 0xcd]);
    expect([...file.subarray(335, 343)]).toEqual([0, 0, 0, 0, 0, 0, 0, 1]);
    expect([...file.subarray(343)]).toEqual([...(await sha256(file.subarray(0, 343)))]);
  });

  it("refuses to write commits of another space or out of order", async () => {
    await refused(() => encodeBundle({ space, commits: [sealed(devA, 1, 40, other)] }), "foreign");
    await refused(() => encodeBundle({ space, commits: [sealed(devA, 2)] }), "malformed");
    await refused(() => encodeBundle({ space, commits: [sealed(devA, 1), sealed(devA, 3)] }), "malformed");
    await refused(
      () => encodeBundle({ space, since: { [devA]: 1 }, commits: [sealed(devA, 1)] }),
      "malformed",
    );
  });

  it("a file cut at any byte gives its whole commits before the cut, and is complete only uncut", async () => {
    const file = await encodeBundle({ space, commits });
    const headerEnd = headerHashAt(file) + 32;
    let previous = 0;
    for (let cut = 0; cut <= file.length; cut++) {
      const part = file.slice(0, cut);
      if (cut < headerEnd) {
        await refused(() => decodeBundle(part), "truncated");
        continue;
      }
      const b = await decodeBundle(part);
      expect(b.complete).toBe(cut === file.length);
      expect(b.commits).toEqual(commits.slice(0, b.commits.length));
      expect(b.commits.length).toBeGreaterThanOrEqual(previous);
      expect(b.ranges).toHaveLength(2);
      previous = b.commits.length;
    }
    expect(previous).toBe(commits.length);
  });

  it("any flipped bit of a complete file is refused; so is one in the header of a truncated file", async () => {
    const file = await encodeBundle({ space, since: { [devB]: 0 }, commits: commits.slice(0, 2) });
    for (let at = 0; at < file.length; at++) {
      for (let bit = 0; bit < 8; bit++) {
        const bad = file.slice();
        bad[at]! ^= 1 << bit;
        await refused(() => decodeBundle(bad));
      }
    }
    const cut = file.slice(0, file.length - 10);
    for (let at = 0; at < headerHashAt(file) + 32; at++) {
      const bad = cut.slice();
      bad[at]! ^= 0x10;
      await refused(() => decodeBundle(bad));
    }
  });

  it("names what is wrong: not a bundle, another version, too large, trailing bytes, foreign commits", async () => {
    const file = await encodeBundle({ space, commits });
    await refused(() => decodeBundle(new TextEncoder().encode("PK\u0003\u0004 a zip file")), "not-a-bundle");
    const v2 = file.slice();
    v2[8] = 2;
    await refused(() => decodeBundle(v2), "unsupported-version");
    await refused(() => decodeBundle(file, { maxBytes: file.length - 1 }), "too-large");
    await refused(() => decodeBundle(new Uint8Array([...file, 0])), "corrupt");
    // A well-hashed file whose header claims another space than its commits carry.
    const moved = await resealed(file, (c) => c.set(fromHex(other), 10));
    await refused(() => decodeBundle(moved), "foreign");
    // A well-hashed file whose count disagrees with its commits.
    const miscounted = await resealed(file, (c) => new DataView(c.buffer).setUint32(c.length - 36, 4));
    await refused(() => decodeBundle(miscounted), "malformed");
    expect(BUNDLE_MAGIC).toHaveLength(8);
  });
});
