// A worker thread of `VerifyPool`: runs `verifiedCommit` over each frame it is sent, in order, up to
// the first commit refused, and answers with what it found (the commits' bytes stay with the relay).
import { parentPort } from "node:worker_threads";
import { commitRefusal, verifiedCommit } from "./commit-refusal.ts";
import type { FrameOutcome, PoolAnswer, PoolRequest } from "./verify-pool.ts";

parentPort!.on("message", ({ id, frames }: PoolRequest) => {
  parentPort!.postMessage({ id, outcomes: frames.map(frameOutcome) } satisfies PoolAnswer);
});

function frameOutcome(commits: Uint8Array[]): FrameOutcome {
  const out: FrameOutcome = { verified: [] };
  for (const [index, bytes] of commits.entries()) {
    let c: ReturnType<typeof verifiedCommit>;
    try {
      c = verifiedCommit(bytes);
    } catch {
      return { ...out, unreadable: index };
    }
    if (c instanceof Error) return { ...out, refused: commitRefusal(c) };
    const { bytes: _bytes, ...fields } = c;
    out.verified.push(fields);
  }
  return out;
}
