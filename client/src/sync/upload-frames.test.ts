import { describe, expect, it } from "vitest";
import { uploadFrames, type UploadFrame } from "./upload-frames.ts";

/** A log of `sizes[i]`-byte commits (seq i + 1, every byte = seq), and the slices read from it. */
function log(sizes: number[]) {
  const reads: [number, number][] = [];
  const seal = async (from: number, to: number) => {
    reads.push([from, to]);
    const out: Uint8Array[] = [];
    for (let s = from; s <= to; s++) out.push(new Uint8Array(sizes[s - 1]!).fill(s % 256));
    return out;
  };
  return { seal, reads };
}

async function all(frames: AsyncGenerator<UploadFrame>): Promise<UploadFrame[]> {
  const out: UploadFrame[] = [];
  for await (const f of frames) out.push(f);
  return out;
}

/** The seqs of a frame's commits (each commit's bytes say its seq). */
const seqs = (f: UploadFrame): number[] => f.commits.map((c) => c[0]!);

describe("uploadFrames", () => {
  it("yields every commit once, in order, in frames within the byte and count limits", async () => {
    const sizes = Array.from({ length: 100 }, (_, i) => 50 + ((i * 37) % 90));
    const { seal } = log(sizes);
    const frames = await all(uploadFrames(seal, 3, 100, { frameBytes: 1000, frameCommits: 7 }));
    expect(frames.flatMap(seqs)).toEqual(Array.from({ length: 98 }, (_, i) => i + 3));
    for (const f of frames) {
      expect(f.commits.length).toBeLessThanOrEqual(7);
      expect(f.bytes).toBe(f.commits.reduce((n, c) => n + c.length, 0));
      expect(f.bytes).toBeLessThanOrEqual(1000);
      expect(f.lastSeq).toBe(seqs(f).at(-1));
    }
  });

  it("sends the first frame after a few commits are sealed, and each one before sealing far past it", async () => {
    // 100 commits of 100 bytes, frames of 1,000 bytes: 10 commits a frame.
    const { seal, reads } = log(Array.from({ length: 100 }, () => 100));
    const sealedWhenYielded: number[] = [];
    for await (const f of uploadFrames(seal, 1, 100, { frameBytes: 1000, frameCommits: 1024 })) {
      sealedWhenYielded.push(reads.at(-1)![1] - f.lastSeq);
      expect(f.commits.length).toBe(10);
    }
    expect(reads[0]).toEqual([1, 4]);
    // At most one commit was sealed beyond a frame when it left (none past the last).
    for (const ahead of sealedWhenYielded) expect(ahead).toBeLessThanOrEqual(1);
    expect(Math.max(...reads.map(([a, b]) => b - a + 1))).toBeLessThanOrEqual(64);
  });

  it("puts a commit larger than the frame budget in a frame of its own", async () => {
    const { seal } = log([10, 5000, 10, 10]);
    const frames = await all(uploadFrames(seal, 1, 4, { frameBytes: 100, frameCommits: 1024 }));
    expect(frames.map(seqs)).toEqual([[1], [2], [3, 4]]);
  });

  it("reads nothing more once the caller stops", async () => {
    const { seal, reads } = log(Array.from({ length: 1000 }, () => 100));
    for await (const f of uploadFrames(seal, 1, 1000, { frameBytes: 1000, frameCommits: 1024 })) {
      if (f.lastSeq >= 20) break;
    }
    expect(Math.max(...reads.map(([, b]) => b))).toBeLessThanOrEqual(31);
  });

  it("stops with the error of a slice that cannot be sealed, after the frames before it", async () => {
    const { seal: inner } = log(Array.from({ length: 50 }, () => 100));
    const seal = (a: number, b: number) =>
      b >= 30 ? Promise.reject(new Error(`commit 30 missing`)) : inner(a, b);
    const got: number[] = [];
    await expect(
      (async () => {
        for await (const f of uploadFrames(seal, 1, 50, { frameBytes: 1000, frameCommits: 1024 }))
          got.push(...seqs(f));
      })(),
    ).rejects.toThrow("commit 30 missing");
    expect(got).toEqual(Array.from({ length: got.length }, (_, i) => i + 1));
    expect(got.length).toBeGreaterThanOrEqual(10);
  });
});
