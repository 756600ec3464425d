import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { MEMBERSHIP_EPOCH, toHex } from "@shoal/client/protocol";
import { randomBytes as nodeRandomBytes } from "node:crypto";
import { makeChain, randomId, sha256, siblingCommit, testDevice } from "./commit-fixtures.ts";
import { incomingCommit } from "./incoming-commit.ts";
import type { RelayStore } from "./store.ts";

const BIG_QUOTA = { quotaBytes: 1 << 30 };
const randomBytes = (n: number) => new Uint8Array(nodeRandomBytes(n));
const ALL = { maxBytes: 1 << 30, maxCount: 10_000 };
// Stand-ins for membership operations: the store keeps their text and never reads it.
const opText = (n: number) => `{"v":1,"test":"membership operation number ${n}"}`;
const membershipChain = (space: string, device: string, texts: string[], from = 1, prevHash?: Uint8Array) =>
  makeChain(space, device, texts.length, {
    from,
    prevHash,
    epoch: MEMBERSHIP_EPOCH,
    bodies: texts.map((t) => new TextEncoder().encode(t)),
  });

/**
 * The behaviour every `RelayStore` adapter must show. Call it from each adapter's test file; `setup`
 * returns a fresh empty store and an optional cleanup.
 *
 * @example
 * runStoreContract("MemoryStore", async () => ({ store: new MemoryStore() }));
 */
export function runStoreContract(
  name: string,
  setup: () => Promise<{ store: RelayStore; cleanup?: () => Promise<void> }>,
): void {
  describe(`RelayStore contract: ${name}`, () => {
    let store: RelayStore;
    let cleanup: (() => Promise<void>) | undefined;
    let space: string;
    const hashA = sha256(new Uint8Array([1]));

    beforeEach(async () => {
      ({ store, cleanup } = await setup());
      space = randomId();
      await store.registerSpace(space, hashA);
    });
    afterEach(async () => {
      await store.close();
      await cleanup?.();
    });

    const inc = (bytes: Uint8Array[]) => bytes.map((b) => incomingCommit(b));

    it("registers a space once and keeps the first token hash", async () => {
      const other = randomId();
      expect(await store.tokenHash(other)).toBeUndefined();
      expect(toHex(await store.registerSpace(other, hashA))).toBe(toHex(hashA));
      expect(toHex(await store.registerSpace(other, sha256(new Uint8Array([2]))))).toBe(toHex(hashA));
      expect(toHex((await store.tokenHash(other))!)).toBe(toHex(hashA));
    });

    it("keeps the creator key of the registration that won, and none for a space registered without one", async () => {
      const other = randomId();
      const creator = randomBytes(32);
      expect(await store.creator(other)).toBeUndefined();
      await store.registerSpace(other, hashA, creator);
      await store.registerSpace(other, sha256(new Uint8Array([2])), randomBytes(32));
      expect(toHex((await store.creator(other))!)).toBe(toHex(creator));
      expect(await store.creator(space)).toBeUndefined();
    });

    it("appends a device's commits in sequence and reports heads, vector and usage", async () => {
      const d = testDevice();
      const chain = makeChain(space, d, 3);
      const r = await store.append(space, inc(chain), BIG_QUOTA);
      expect(r.stored.map((c) => c.seq)).toEqual([1, 2, 3]);
      expect(r.refused).toBeUndefined();
      expect(r.heads.get(d)).toBe(3);
      expect([...(await store.vector(space))]).toEqual([[d, 3]]);
      const bytes = chain.reduce((n, c) => n + c.length, 0);
      expect(await store.usage(space)).toEqual({ commits: 3, bytes });
    });

    it("acknowledges an exact duplicate again and stores it once", async () => {
      const d = testDevice();
      const chain = makeChain(space, d, 2);
      await store.append(space, inc(chain), BIG_QUOTA);
      const before = await store.usage(space);
      const r = await store.append(space, inc([chain[1]!, chain[0]!]), BIG_QUOTA);
      expect(r).toMatchObject({ stored: [], duplicates: 2 });
      expect(r.refused).toBeUndefined();
      expect(r.heads.get(d)).toBe(2);
      expect(await store.usage(space)).toEqual(before);
    });

    it("refuses a different commit for a taken (device, seq)", async () => {
      const d = testDevice();
      await store.append(space, inc(makeChain(space, d, 2)), BIG_QUOTA);
      const other = makeChain(space, d, 2);
      const r = await store.append(space, inc([other[0]!]), BIG_QUOTA);
      expect(r.refused).toEqual({ device: d, seq: 1, code: "conflict", index: 0 });
      expect(r.stored).toEqual([]);
    });

    it("refuses a gap and a broken hash chain", async () => {
      const d = testDevice();
      const chain = makeChain(space, d, 4);
      await store.append(space, inc(chain.slice(0, 2)), BIG_QUOTA);
      expect((await store.append(space, inc([chain[3]!]), BIG_QUOTA)).refused?.code).toBe("gap");
      const forged = makeChain(space, d, 1, { from: 3, prevHash: sha256(new Uint8Array([9])) });
      expect((await store.append(space, inc(forged), BIG_QUOTA)).refused?.code).toBe("chain");
      expect([...(await store.vector(space))]).toEqual([[d, 2]]);
    });

    it("stores the accepted prefix of a batch and stops at the first refusal", async () => {
      const d = testDevice();
      const e = testDevice();
      const chain = makeChain(space, d, 3);
      const other = makeChain(space, e, 1);
      const r = await store.append(space, inc([chain[0]!, chain[2]!, other[0]!]), BIG_QUOTA);
      expect(r.stored.map((c) => c.seq)).toEqual([1]);
      expect(r.refused).toEqual({ device: d, seq: 3, code: "gap", index: 1 });
      expect([...(await store.vector(space))]).toEqual([[d, 1]]);
    });

    it("refuses a commit that would exceed the space quota, with nothing of it stored", async () => {
      const d = testDevice();
      const chain = makeChain(space, d, 3, { bodyBytes: 100 });
      const quota = chain[0]!.length + chain[1]!.length;
      const r = await store.append(space, inc(chain), { quotaBytes: quota });
      expect(r.stored.length).toBe(2);
      expect(r.refused).toEqual({ device: d, seq: 3, code: "quota", index: 2 });
      expect(await store.usage(space)).toEqual({ commits: 2, bytes: quota });
      // A duplicate costs nothing, so it is still acknowledged when the space is full.
      expect((await store.append(space, inc([chain[1]!]), { quotaBytes: quota })).duplicates).toBe(1);
    });

    it("reads what a vector lacks, per device in order, interleaved by arrival", async () => {
      const d = testDevice();
      const e = testDevice();
      const cd = makeChain(space, d, 3);
      const ce = makeChain(space, e, 2);
      await store.append(space, inc([cd[0]!, ce[0]!, cd[1]!]), BIG_QUOTA);
      await store.append(space, inc([ce[1]!, cd[2]!]), BIG_QUOTA);
      const all = await store.read(space, new Map(), ALL);
      expect(all.commits.map(toHex)).toEqual([cd[0]!, ce[0]!, cd[1]!, ce[1]!, cd[2]!].map(toHex));
      expect(all.more).toBe(false);
      const some = await store.read(space, new Map([[d, 2]]), ALL);
      expect(some.commits.map(toHex)).toEqual([ce[0]!, ce[1]!, cd[2]!].map(toHex));
      const none = await store.read(
        space,
        new Map([
          [d, 3],
          [e, 2],
        ]),
        ALL,
      );
      expect(none).toEqual({ commits: [], bytes: 0, more: false });
    });

    it("bounds a read by bytes and count, returns at least one commit, and says more", async () => {
      const d = testDevice();
      const chain = makeChain(space, d, 5, { bodyBytes: 100 });
      await store.append(space, inc(chain), BIG_QUOTA);
      const size = chain[0]!.length;
      const two = await store.read(space, new Map(), { maxBytes: size * 2 + 1, maxCount: 100 });
      expect(two.commits.map(toHex)).toEqual(chain.slice(0, 2).map(toHex));
      expect(two).toMatchObject({ bytes: size * 2, more: true });
      const one = await store.read(space, new Map(), { maxBytes: 1, maxCount: 100 });
      expect(one.commits.length).toBe(1);
      expect(one.more).toBe(true);
      const three = await store.read(space, new Map(), { maxBytes: 1 << 20, maxCount: 3 });
      expect(three.commits.length).toBe(3);
      expect(three.more).toBe(true);
      const rest = await store.read(space, new Map([[d, 3]]), { maxBytes: 1 << 20, maxCount: 2 });
      expect(rest.commits.map(toHex)).toEqual(chain.slice(3).map(toHex));
      expect(rest.more).toBe(false);
    });

    it("has no snapshot at first, then stores one and returns it", async () => {
      expect(await store.getSnapshot(space)).toBeUndefined();
      const d = testDevice();
      await store.append(space, inc(makeChain(space, d, 3)), BIG_QUOTA);
      const bytes = randomBytes(5000);
      expect(await store.putSnapshot(space, new Map([[d, 2]]), bytes)).toBe("stored");
      const got = await store.getSnapshot(space);
      expect([...got!.vector]).toEqual([[d, 2]]);
      expect(toHex(got!.bytes)).toBe(toHex(bytes));
      // Another space still has none.
      const other = randomId();
      await store.registerSpace(other, hashA);
      expect(await store.getSnapshot(other)).toBeUndefined();
    });

    it("replaces a snapshot only with a dominating vector, and refuses a stale one", async () => {
      const d = testDevice();
      const e = testDevice();
      await store.append(space, inc([...makeChain(space, d, 3), ...makeChain(space, e, 2)]), BIG_QUOTA);
      const first = randomBytes(10);
      expect(await store.putSnapshot(space, new Map([[d, 2]]), first)).toBe("stored");
      // Lower for d: stale. Not naming d at all (d absent = 0): stale too.
      expect(
        await store.putSnapshot(
          space,
          new Map([
            [d, 1],
            [e, 2],
          ]),
          randomBytes(10),
        ),
      ).toBe("stale");
      expect(await store.putSnapshot(space, new Map([[e, 2]]), randomBytes(10))).toBe("stale");
      expect(toHex((await store.getSnapshot(space))!.bytes)).toBe(toHex(first));
      // Equal vectors dominate: replaced.
      const equal = randomBytes(12);
      expect(await store.putSnapshot(space, new Map([[d, 2]]), equal)).toBe("stored");
      expect(toHex((await store.getSnapshot(space))!.bytes)).toBe(toHex(equal));
      const newer = randomBytes(7);
      expect(
        await store.putSnapshot(
          space,
          new Map([
            [e, 1],
            [d, 3],
          ]),
          newer,
        ),
      ).toBe("stored");
      const got = await store.getSnapshot(space);
      expect(new Map(got!.vector)).toEqual(
        new Map([
          [d, 3],
          [e, 1],
        ]),
      );
      expect(toHex(got!.bytes)).toBe(toHex(newer));
    });

    it("refuses a snapshot that claims commits the store does not hold (gap)", async () => {
      const d = testDevice();
      await store.append(space, inc(makeChain(space, d, 2)), BIG_QUOTA);
      expect(await store.putSnapshot(space, new Map([[d, 3]]), randomBytes(10))).toBe("gap");
      expect(await store.putSnapshot(space, new Map([[randomId(), 1]]), randomBytes(10))).toBe("gap");
      expect(await store.getSnapshot(space)).toBeUndefined();
      // Gap wins over stale: the claim is checked first.
      expect(await store.putSnapshot(space, new Map([[d, 2]]), randomBytes(10))).toBe("stored");
      expect(await store.putSnapshot(space, new Map([[d, 5]]), randomBytes(10))).toBe("gap");
      // The empty vector is no gap, but stale against a stored snapshot.
      expect(await store.putSnapshot(space, new Map(), randomBytes(10))).toBe("stale");
    });

    it("counts snapshot bytes toward usage and quota, freeing the replaced snapshot's", async () => {
      const d = testDevice();
      const chain = makeChain(space, d, 2, { bodyBytes: 100 });
      await store.append(space, inc(chain), BIG_QUOTA);
      const commitBytes = chain.reduce((n, c) => n + c.length, 0);
      expect(await store.putSnapshot(space, new Map([[d, 1]]), randomBytes(1000))).toBe("stored");
      expect(await store.usage(space)).toEqual({ commits: 2, bytes: commitBytes + 1000 });
      expect(await store.putSnapshot(space, new Map([[d, 2]]), randomBytes(300))).toBe("stored");
      expect(await store.usage(space)).toEqual({ commits: 2, bytes: commitBytes + 300 });
      // Replacing frees the old size first: 300 -> 500 fits a quota of commits + 500, 501 does not.
      const quota = { quotaBytes: commitBytes + 500 };
      expect(await store.putSnapshot(space, new Map([[d, 2]]), randomBytes(501), quota)).toBe("quota");
      expect(await store.putSnapshot(space, new Map([[d, 2]]), randomBytes(500), quota)).toBe("stored");
      expect(await store.usage(space)).toEqual({ commits: 2, bytes: commitBytes + 500 });
      // The snapshot's bytes leave no room for a further commit under that quota.
      const next = makeChain(space, d, 1, { from: 3, prevHash: sha256(chain[1]!), bodyBytes: 100 });
      expect((await store.append(space, inc(next), quota)).refused?.code).toBe("quota");
      expect((await store.append(space, inc(next), BIG_QUOTA)).stored.length).toBe(1);
    });

    it("replaces a head with its author's other copy, and nothing else", async () => {
      const d = testDevice();
      const chain = makeChain(space, d, 3);
      // The copy stored has another body under the same header and length: the relay verifies
      // signatures, so this is what a store can hold in place of its author's intended commit.
      const damaged = siblingCommit(chain[2]!);
      await store.append(space, inc([chain[0]!, chain[1]!, damaged]), BIG_QUOTA);
      const usage = await store.usage(space);
      // Not the head (commit 3 chains to 2), another header, another length, nothing stored: refused.
      const otherBody = makeChain(space, d, 1, { from: 2, prevHash: sha256(chain[0]!) })[0]!;
      expect(await store.replace(space, incomingCommit(otherBody))).toEqual({ verdict: "conflict", head: 3 });
      const otherPrev = makeChain(space, d, 1, { from: 3, prevHash: sha256(Uint8Array.of(1)) })[0]!;
      expect(await store.replace(space, incomingCommit(otherPrev))).toEqual({
        verdict: "conflict",
        head: 3,
      });
      const longer = makeChain(space, d, 1, { from: 3, prevHash: sha256(chain[1]!), bodyBytes: 80 })[0]!;
      expect(await store.replace(space, incomingCommit(longer))).toEqual({ verdict: "conflict", head: 3 });
      const [fourth] = makeChain(space, d, 1, { from: 4, prevHash: sha256(chain[2]!) });
      expect(await store.replace(space, incomingCommit(fourth!))).toEqual({ verdict: "gap", head: 3 });
      expect((await store.replace(space, incomingCommit(chain[0]!))).verdict).toBe("duplicate");
      // The intact copy of the head replaces the damaged one; the next commit then chains to it.
      expect(await store.replace(space, incomingCommit(chain[2]!))).toEqual({ verdict: "replaced", head: 3 });
      expect(await store.replace(space, incomingCommit(chain[2]!))).toEqual({
        verdict: "duplicate",
        head: 3,
      });
      expect(await store.usage(space)).toEqual(usage);
      const read = await store.read(space, new Map([[d, 2]]), ALL);
      expect(read.commits.map(toHex)).toEqual([toHex(chain[2]!)]);
      const r = await store.append(space, inc([fourth!]), BIG_QUOTA);
      expect(r.refused).toBeUndefined();
      expect(r.heads.get(d)).toBe(4);
      // Now commit 3 is history: it can no longer be replaced.
      expect((await store.replace(space, incomingCommit(damaged))).verdict).toBe("conflict");
    });

    // Hostile soak seed 10225: the codec checks no epoch value, so a head stored with another epoch
    // could never be replaced by its author when the rule wanted every header byte equal.
    it("replaces a head stored with another epoch with its author's copy", async () => {
      const d = testDevice();
      const chain = makeChain(space, d, 2);
      const damaged = siblingCommit(chain[1]!, { epoch: 4 }); // the u32 epoch is bytes 41 to 44
      await store.append(space, inc([chain[0]!, damaged]), BIG_QUOTA);
      expect(await store.replace(space, incomingCommit(chain[1]!))).toEqual({ verdict: "replaced", head: 2 });
      const read = await store.read(space, new Map([[d, 1]]), ALL);
      expect(read.commits.map(toHex)).toEqual([toHex(chain[1]!)]);
    });

    it("keeps the membership log: the operations of newly stored membership commits, in arrival order", async () => {
      const [a, b] = [testDevice(), testDevice()];
      expect(await store.membershipOps(space)).toEqual([]);
      const first = membershipChain(space, a, [opText(1), opText(2)]);
      await store.append(space, inc([...first, ...makeChain(space, b, 1)]), BIG_QUOTA);
      // A duplicate is stored once, and so is its operation; a refused commit adds nothing.
      const third = membershipChain(space, b, [opText(3)], 2); // chained to nothing: refused
      const result = await store.append(space, inc([first[1]!, ...third]), BIG_QUOTA);
      expect(result.refused?.code).toBe("chain");
      const fourth = membershipChain(space, a, [opText(4)], 3, sha256(first[1]!));
      await store.append(space, inc(fourth), BIG_QUOTA);
      expect(await store.membershipOps(space)).toEqual([opText(1), opText(2), opText(4)]);
      expect(await store.membershipOps(randomId())).toEqual([]);
    });

    it("compacts up to a vector: drops data commits and a snapshot below it, keeps the log and the chain", async () => {
      const d = testDevice();
      const e = testDevice();
      const data = makeChain(space, d, 3);
      const ops = membershipChain(space, d, [opText(1)], 4, sha256(data[2]!));
      const more = makeChain(space, d, 2, { from: 5, prevHash: sha256(ops[0]!) });
      const other = makeChain(space, e, 2);
      await store.append(space, inc([...data, ...ops, ...more, ...other]), BIG_QUOTA);
      expect(await store.putSnapshot(space, new Map([[d, 4]]), randomBytes(3000))).toBe("stored");
      const before = await store.usage(space);
      const freedCommits = [...data, more[0]!, other[0]!].reduce((n, b) => n + b.length, 0);

      const result = await store.compact(
        space,
        new Map([
          [d, 5],
          [e, 1],
        ]),
      );
      expect(result).toEqual({ commits: 5, bytes: freedCommits + 3000, snapshot: true });
      expect(await store.usage(space)).toEqual({
        commits: before.commits - 5,
        bytes: before.bytes - freedCommits - 3000,
      });
      expect(await store.getSnapshot(space)).toBeUndefined();
      // The vector is unchanged; reads skip what was dropped but serve the membership commit and the tail.
      expect(Object.fromEntries(await store.vector(space))).toEqual({ [d]: 6, [e]: 2 });
      const all = await store.read(space, new Map(), ALL);
      expect(all.commits.map(toHex).sort()).toEqual([ops[0]!, more[1]!, other[1]!].map(toHex).sort());
      expect(all.more).toBe(false);
      // A small budget still pages over compacted commits without stopping early.
      const one = await store.read(space, new Map(), { maxBytes: 1 << 20, maxCount: 1 });
      expect(one.commits).toHaveLength(1);
      expect(one.more).toBe(true);
      // The chain goes on from the compacted head's hash, and a re-upload of a dropped commit is a
      // duplicate that is acknowledged and never stored again.
      const next = makeChain(space, e, 1, { from: 3, prevHash: sha256(other[1]!) });
      const again = await store.append(space, inc([data[0]!, other[0]!, ...next]), BIG_QUOTA);
      expect(again.duplicates).toBe(2);
      expect(again.stored).toHaveLength(1);
      expect((await store.read(space, new Map(), ALL)).commits.map(toHex)).not.toContain(toHex(data[0]!));
      // Compacting again frees nothing more; a snapshot that covers the vector stays (the base of fresh
      // devices), also when it covers it exactly.
      expect(await store.putSnapshot(space, new Map([[d, 6]]), randomBytes(100))).toBe("stored");
      expect(await store.compact(space, new Map([[d, 5]]))).toEqual({
        commits: 0,
        bytes: 0,
        snapshot: false,
      });
      expect(await store.getSnapshot(space)).toBeDefined();
      const exact = await store.compact(space, new Map([[d, 6]]));
      expect(exact.snapshot).toBe(false);
      expect((await store.getSnapshot(space))?.vector).toEqual(new Map([[d, 6]]));
      await expect(store.compact(randomId(), new Map([[d, 1]]))).rejects.toThrow();
    });

    it("keeps spaces apart and counts totals", async () => {
      const other = randomId();
      await store.registerSpace(other, hashA);
      const d = testDevice();
      await store.append(space, inc(makeChain(space, d, 2)), BIG_QUOTA);
      await store.append(other, inc(makeChain(other, d, 1)), BIG_QUOTA);
      expect((await store.read(other, new Map(), ALL)).commits.length).toBe(1);
      expect([...(await store.vector(other))]).toEqual([[d, 1]]);
      const stats = await store.stats();
      expect(stats.spaces).toBe(2);
      expect(stats.commits).toBe(3);
    });
  });
}
