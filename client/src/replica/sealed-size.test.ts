import "fake-indexeddb/auto";
import { describe, expect, it } from "vitest";
import { deriveCommitKey, deriveNonceKey } from "../crypto/keys.ts";
import { sealCommit } from "../crypto/seal.ts";
import { openDatabase } from "../database.ts";
import { CommitTooLarge } from "../errors.ts";
import { encodeCommitHeader } from "../protocol/commit-header.ts";
import { COMMIT_FORMAT_VERSION, MAX_COMMIT_BYTES } from "../protocol/limits.ts";
import { encodeSealedCommit } from "../protocol/sealed-commit.ts";
import { encodeCommitPlaintext } from "../sealing/commit-codec.ts";
import { seededRandom } from "../testing/seeded-random.ts";
import type { CommitId, DeviceId, RecordId, SpaceId } from "../types.ts";
import type { Commit, RecordChange } from "./commit.ts";
import { assertSealable, commitPlaintextBytes, sealedCommitBytes, utf8Length } from "./sealed-size.ts";

const space = "00112233445566778899aabbccddeeff" as SpaceId;
const device = "ffeeddccbbaa99887766554433221100" as DeviceId;
const spaceKey = new Uint8Array(32).fill(7);

/** Seals a commit exactly as `SpaceSealer` does (synthetic IV, header as AAD). */
async function seal(c: Commit): Promise<Uint8Array> {
  const dev = Uint8Array.from(device.match(/../g)!.map((h) => parseInt(h, 16)));
  const header = {
    version: COMMIT_FORMAT_VERSION,
    space: Uint8Array.from(space.match(/../g)!.map((h) => parseInt(h, 16))),
    device: dev,
    seq: c.seq,
    epoch: 0,
    prevHash: new Uint8Array(32),
    author: new Uint8Array(32).fill(0xcd),
  };
  const aad = encodeCommitHeader(header);
  const [key, nonceKey] = await Promise.all([
    deriveCommitKey(spaceKey, dev, 0),
    deriveNonceKey(spaceKey, dev, 0),
  ]);
  // The size does not depend on the key or the signature's value: fillers.
  const body = await sealCommit(key, aad, encodeCommitPlaintext(c), nonceKey);
  return encodeSealedCommit(header, body, new Uint8Array(64));
}

const ALPHABETS = ["abc xyz", "éàüß", "漢字かな한글", "😀🎉👩‍⚕️", "\ud800x\udfff", "\u007f\u0080\u07ff\u0800"];

function randomText(rnd: ReturnType<typeof seededRandom>, max: number): string {
  const chars = [...rnd.pick(ALPHABETS)];
  let s = "";
  const n = rnd.int(max);
  for (let i = 0; i < n; i++) s += rnd.pick(chars);
  // Now and then a lone surrogate, which TextEncoder writes as U+FFFD.
  return rnd.int(5) === 0 ? s + "\ud83d" : s;
}

function randomCommit(rnd: ReturnType<typeof seededRandom>): Commit {
  const changes: RecordChange[] = [];
  const records = 1 + rnd.int(4);
  for (let r = 0; r < records; r++) {
    const withCreate = rnd.int(2) === 0;
    changes.push({
      record: `019ab2c3-d4e5-7f00-8123-4567${String(r).padStart(8, "0")}` as RecordId,
      collection: randomText(rnd, 12) || "c",
      op: withCreate ? "insert" : rnd.pick(["update", "delete"] as const),
      paths: Array.from({ length: rnd.int(4) }, () => randomText(rnd, 10)),
      changes: Array.from({ length: rnd.int(3) }, () => new Uint8Array(rnd.int(rnd.int(2) ? 300 : 40_000))),
      ...(withCreate
        ? {
            create: {
              json: { note: randomText(rnd, rnd.int(2) ? 200 : 30_000), n: rnd.int(1000), tags: ["a", "漢"] },
              text: ["note"],
              counters: [],
            },
          }
        : {}),
    });
  }
  return { id: `${space}.${device}.1` as CommitId, space, device, seq: 1, at: rnd.int(2 ** 40), changes };
}

describe("sealed commit size", () => {
  it("counts UTF-8 as TextEncoder writes it", () => {
    const enc = new TextEncoder();
    for (const s of [...ALPHABETS, "", "\ud83d", "\udc00", "a\ud83d\ude00b", "\ud83d\ud83d\ude00"])
      expect(utf8Length(s), JSON.stringify(s)).toBe(enc.encode(s).length);
  });

  it("equals the plaintext and sealed lengths of real commits, for random commits", async () => {
    const seed = Number(process.env.SIZE_SEED ?? 20261206);
    const rnd = seededRandom(seed);
    for (let i = 0; i < 60; i++) {
      const c = randomCommit(rnd);
      const context = `seed ${seed}, commit ${i}`;
      expect(commitPlaintextBytes(c.changes), context).toBe(encodeCommitPlaintext(c).length);
      expect(sealedCommitBytes(c.changes), context).toBe((await seal(c)).length);
    }
  });

  it("accepts the largest commit that seals and refuses one byte more", async () => {
    // Plaintext framing around one change of n bytes: 13 + 27 + (2 + 1) for collection "c" + 4.
    const around = 13 + 27 + 3 + 4;
    const largest = 15 * 65_536 - 4 - around; // fills the last 64 KiB bucket under MAX_COMMIT_BYTES
    const make = (n: number): Commit => ({
      id: `${space}.${device}.1` as CommitId,
      space,
      device,
      seq: 1,
      at: 0,
      changes: [
        {
          record: "019ab2c3-d4e5-7f00-8123-456789abcdef" as RecordId,
          collection: "c",
          op: "update",
          paths: [],
          changes: [new Uint8Array(n)],
        },
      ],
    });
    const fits = make(largest);
    expect(() => assertSealable(space, fits.changes)).not.toThrow();
    const sealed = await seal(fits);
    expect(sealed.length).toBe(sealedCommitBytes(fits.changes));
    expect(sealed.length).toBeLessThanOrEqual(MAX_COMMIT_BYTES);
    const over = make(largest + 1);
    expect(() => assertSealable(space, over.changes)).toThrow(CommitTooLarge);
    await expect(seal(over)).rejects.toThrow(/exceeds/);
  });

  it("refuses CJK notes over the sealed size at commit time, taking no sequence number", async () => {
    const db = await openDatabase({
      name: "size-cjk",
      collections: { notes: "id" },
    });
    // Three 140,000-character CJK notes in one transaction: 420,000 UTF-16 units (the old count saw
    // about 420 KB and let it through), 1.26 MB of UTF-8. Each record stays within the content limits
    // (a plain string is one value and one op), so only the sealed size refuses it.
    const body = "漢".repeat(140_000);
    const err = await db
      .transact(async (tx) => {
        for (let i = 0; i < 3; i++) await tx.notes.insert({ body });
      })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CommitTooLarge);
    expect(err).toMatchObject({ code: "CommitTooLarge", space: db.privateSpace, limit: MAX_COMMIT_BYTES });
    expect((err as CommitTooLarge).bytes).toBeGreaterThan(1_260_000);
    expect((err as Error).message).toMatch(/split it/);
    expect(await db.notes.count()).toBe(0);
    expect(await db.vector()).toEqual({});
    // The same edit split in parts syncs (two notes fit in one commit, the third in another), and the
    // first commit still takes sequence 1.
    await db.transact(async (tx) => {
      for (let i = 0; i < 2; i++) await tx.notes.insert({ body });
    });
    await db.notes.insert({ body });
    expect((await db.vector())[db.privateSpace]).toEqual({ [db.deviceId]: 2 });
  }, 30_000);
});
