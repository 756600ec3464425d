import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { verifiedPrefix } from "./commit-refusal.ts";
import { makeChain, randomId, testDevice } from "./store/commit-fixtures.ts";
import { VerifyPool } from "./verify-pool.ts";

const space = randomId();

let pool: VerifyPool | undefined;
let failures: unknown[] = [];
afterEach(async () => {
  await pool?.close();
  pool = undefined;
  // Every answer came from a worker: none went back to this thread after a failure.
  expect(failures).toEqual([]);
  failures = [];
});

function flipped(commit: Uint8Array, at: number): Uint8Array {
  const bad = commit.slice();
  bad[at]! ^= 0x01;
  return bad;
}

describe("VerifyPool", () => {
  it("gives each frame of a turn what verifiedPrefix gives, in order, over several workers", async () => {
    pool = new VerifyPool(2, { onFailure: (e) => failures.push(e) });
    const frames = Array.from({ length: 7 }, () => makeChain(space, testDevice(), 3, { bodyBytes: 200 }));
    const results = await Promise.all(frames.map((f) => pool!.verify(f)));
    results.forEach((r, i) => expect(r).toEqual(verifiedPrefix(frames[i]!)));
    // The stored commits are the uploaded bytes themselves, not copies made for the workers.
    expect(results[3]!.verified[1]!.bytes).toBe(frames[3]![1]);
  });

  it("still refuses a bad signature, stopping at it, and a device id not its author key's", async () => {
    pool = new VerifyPool(1, { onFailure: (e) => failures.push(e) });
    const chain = makeChain(space, testDevice(), 3, { bodyBytes: 100 });
    const forged = [chain[0]!, flipped(chain[1]!, chain[1]!.length - 1), chain[2]!];
    const r = await pool.verify(forged);
    expect(r.verified.map((c) => c.seq)).toEqual([1]);
    expect(r.refused).toMatchObject({ code: "signature", seq: 2 });
    expect(r).toEqual(verifiedPrefix(forged));
    const other = makeChain(space, testDevice(), 1)[0]!;
    // The header starts with a version byte and the space id (16 bytes): byte 20 is in the device id.
    const wrongAuthor = flipped(other, 20);
    const refused = await pool.verify([wrongAuthor]);
    expect(refused).toEqual(verifiedPrefix([wrongAuthor]));
    expect(refused.refused).toMatchObject({
      code: "signature",
      message: expect.stringContaining("device id"),
    });
  });

  it("throws like verifiedPrefix for an unreadable commit, after the readable ones", async () => {
    pool = new VerifyPool(1, { onFailure: (e) => failures.push(e) });
    const [good] = makeChain(space, testDevice(), 1);
    const broken = good!.subarray(0, 20);
    expect(() => verifiedPrefix([good!, broken])).toThrow();
    await expect(pool.verify([good!, broken])).rejects.toThrow();
  });

  it("verifies on the relay's thread once closed", async () => {
    pool = new VerifyPool(1, { onFailure: (e) => failures.push(e) });
    const chain = makeChain(space, testDevice(), 2);
    const waiting = pool.verify(chain);
    await pool.close();
    expect(await waiting).toEqual(verifiedPrefix(chain));
    expect(await pool.verify(chain)).toEqual(verifiedPrefix(chain));
  });

  it("keeps a process alive while a frame waits for a worker, and lets it end once answered", () => {
    // A script with nothing else to wait for (no server): an unreferenced worker let it exit mid-await.
    const script = `
      const { VerifyPool } = await import("./sync-server/src/verify-pool.ts");
      const { makeChain, randomId, testDevice } = await import("./sync-server/src/store/commit-fixtures.ts");
      const pool = new VerifyPool(1);
      const r = await pool.verify(makeChain(randomId(), testDevice(), 2));
      process.stdout.write(String(r.verified.length));`;
    const out = execFileSync(
      process.execPath,
      ["--conditions=shoal-source", "--import", "tsx", "--input-type=module", "-e", script],
      { cwd: fileURLToPath(new URL("../../", import.meta.url)), timeout: 30_000, encoding: "utf8" },
    );
    expect(out).toBe("2");
  });
});
