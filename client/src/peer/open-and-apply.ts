import { ShoalError } from "../errors.ts";
import type { OpenedCommit } from "../sealing/sealer.ts";
import type { PeerReplica } from "./peer-replica.ts";
import type { PeerSealer } from "./peer-sealer.ts";

/** What `openAndApply` works with and reports to: the parts of one responder. */
export interface UploadTarget {
  readonly sealer: PeerSealer;
  readonly replica: PeerReplica;
  /** A commit that did not open, or that the replica rejected. */
  error(error: ShoalError): void;
  /** How many commits of the group opened (counted before they are applied). */
  received(count: number): void;
  /** The peer holds this commit (it uploaded it). */
  peerHas(device: string, seq: number): void;
}

/** Opens, checks, applies and keeps some commits of an upload; returns what opened. */
export async function openAndApply(
  frames: Uint8Array[],
  to: UploadTarget,
): Promise<{ opened: OpenedCommit[]; refused: number }> {
  const opened: OpenedCommit[] = [];
  const prev = new Map<string, Uint8Array>();
  let refused = 0;
  for (const bytes of frames) {
    try {
      const o = await to.sealer.open(bytes, (d, seq) => prev.get(`${d}.${seq}`));
      prev.set(`${o.commit.device}.${o.commit.seq}`, o.sealed);
      opened.push(o);
    } catch (e) {
      // Same rule as a session receiving from the relay: report it, drop it, go on with the others.
      refused++;
      to.error(e instanceof ShoalError ? e : new ShoalError("SyncError", String(e)));
    }
  }
  to.received(opened.length);
  if (opened.length > 0) {
    const fit = await to.sealer.screen(opened, "peer");
    const report = await to.replica.applyCommits(fit.map((o) => o.commit));
    const held = new Set<string>(report.quarantined); // quarantined: slot held, sealed bytes kept
    const rejected = new Set(report.rejected.map((r) => r.id).filter((id) => !held.has(id)));
    for (const r of report.rejected) to.error(r.error);
    await to.sealer.keep(
      fit.filter((o) => !rejected.has(o.commit.id)),
      "peer",
    );
    for (const o of opened) to.peerHas(o.commit.device, o.commit.seq);
  }
  return { opened, refused };
}
