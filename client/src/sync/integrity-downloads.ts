import { sha256 } from "../crypto/seal.ts";
import type { ShoalError } from "../errors.ts";
import { decodeSealedCommit, toHex } from "../protocol/index.ts";
import type { DeviceId, SpaceId } from "../types.ts";
import type { IntegrityLog, IntegritySource } from "../sealing/integrity.ts";
import type { MissingCommits, StuckCommit } from "../status/sync-status.ts";

/**
 * One session's account of what it knows to be missing or stuck, and the rule for commits that do not
 * open: different bytes than last time (or the first time) is damage on the way, so the session pulls
 * again with backoff (`refetch`); the same bytes twice from one source is a commit bad at its source,
 * given up on (`refused`: pulls ask past it) and reported once in `db.integrity`. Also the own commits
 * the relay keeps refusing (`chain`/`conflict`). `report` is told the whole picture on every change.
 *
 * @example
 * const repair = new DownloadRepair({ space, source: "relay", integrity, report: hooks.blocked, error });
 * await repair.damaged(bytes, err); // from the receive step
 * if (repair.pullFinished() === "refetch") scheduleAnotherPull(repair.nextDelay(backoff));
 */
export class DownloadRepair {
  readonly #space: SpaceId;
  readonly #source: IntegritySource;
  readonly #integrity: IntegrityLog;
  readonly #report: (missing: readonly MissingCommits[], stuck: readonly StuckCommit[]) => void;
  readonly #error: (e: ShoalError) => void;
  /**
   * Per device: the highest sequence given up on as bad at its source. Pulls ask past it, or the
   * relay would send the same commit forever. Cleared on every connection (the relay may hold a
   * replacement by then; the same bad bytes again are recognised at once by their hash).
   */
  readonly refused = new Map<string, number>();
  /** Damaged downloads by `device.seq`: the hash of the last bytes served, and whether given up on. */
  readonly #damaged = new Map<string, { hash: string; bad: boolean }>();
  /** Damaged commits served again since the current pull began (the others the source no longer has). */
  readonly #served = new Set<string>();
  /** Some commit of the current pull did not open: pull again (with backoff) instead of saying synced. */
  #refetch = false;
  #attempt = 0;
  /** Own commits the relay keeps refusing, by device. */
  readonly #stuck = new Map<string, StuckCommit>();

  constructor(opts: {
    space: SpaceId;
    source: IntegritySource;
    integrity: IntegrityLog;
    report: (missing: readonly MissingCommits[], stuck: readonly StuckCommit[]) => void;
    error: (e: ShoalError) => void;
  }) {
    this.#space = opts.space;
    this.#source = opts.source;
    this.#integrity = opts.integrity;
    this.#report = opts.report;
    this.#error = opts.error;
  }

  /** A new connection was welcomed: given-up commits are asked for once more. */
  connected(): void {
    this.refused.clear();
    this.#refetch = false;
  }

  /** A pull from the vector (not a continuation) starts. */
  pullStarted(): void {
    this.#served.clear();
  }

  /** Whether some download of the current pull (or a live push) was damaged and is to be fetched again. */
  get refetchWanted(): boolean {
    return this.#refetch;
  }

  /**
   * The last reply of a pull arrived: forgets damaged commits the source did not serve again (it does
   * not hold them: a frame damaged in its header, a stray push), then says whether to pull again
   * (`refetch`, after `nextDelay`) or whether this replica holds all the source has (`synced`).
   */
  pullFinished(): "refetch" | "synced" {
    let changed = false;
    for (const [key, v] of this.#damaged)
      if (!v.bad && !this.#served.has(key)) {
        this.#damaged.delete(key);
        changed = true;
      }
    if (changed) this.#publish();
    if (this.#refetch) {
      this.#refetch = false;
      return "refetch";
    }
    this.#attempt = 0;
    return "synced";
  }

  /** The delay before the next refetch: `baseMs` doubling per attempt up to `maxMs`, with jitter. */
  nextDelay(backoff: { baseMs: number; maxMs: number }): number {
    const d = Math.min(backoff.maxMs, backoff.baseMs * 2 ** Math.min(this.#attempt, 16));
    this.#attempt++;
    return d * (0.5 + Math.random() / 2);
  }

  /** A commit that did not open (`error` says why). */
  async damaged(bytes: Uint8Array, error: ShoalError): Promise<void> {
    let device: string;
    let seq: number;
    try {
      const { header } = decodeSealedCommit(bytes);
      if (toHex(header.space) !== this.#space) {
        // Not a commit of this space at all: nothing of ours is missing because of it.
        this.#error(error);
        return;
      }
      device = toHex(header.device);
      seq = header.seq;
    } catch {
      // Not even a readable header: a damaged frame; the next pull asks for the same commits again.
      this.#error(error);
      this.#refetch = true;
      return;
    }
    const key = `${device}.${seq}`;
    this.#served.add(key);
    const hash = toHex(await sha256(bytes));
    const before = this.#damaged.get(key);
    if (before?.hash === hash) {
      if (!before.bad) {
        const from = this.#source === "relay" ? "the relay" : "its source";
        this.#integrity.report({
          kind: "bad-at-source",
          space: this.#space,
          device: device as DeviceId,
          seq,
          refused: { hash, source: this.#source },
          message: `Commit ${seq} of device ${device} in space ${this.#space} does not open (${error.code}) and ${from} serves the same bytes again: given up on; the device's later commits wait behind it.`,
        });
        this.#error(error);
      }
      this.#damaged.set(key, { hash, bad: true });
      if ((this.refused.get(device) ?? 0) < seq) this.refused.set(device, seq);
      this.#publish();
      return;
    }
    this.#error(error);
    this.#damaged.set(key, { hash, bad: false });
    this.#refetch = true;
    this.#publish();
  }

  /** Forgets damaged downloads this replica now holds (`held`: its vector for the space). */
  settle(held: Readonly<Record<string, number>>): void {
    let changed = false;
    for (const key of [...this.#damaged.keys()]) {
      const [device, seqText] = key.split(".");
      if ((held[device!] ?? 0) >= Number(seqText)) {
        this.#damaged.delete(key);
        changed = true;
      }
    }
    if (changed) this.#publish();
  }

  /** Whether any damaged download is still unaccounted for (so `settle` has work). */
  get pending(): boolean {
    return this.#damaged.size > 0;
  }

  /** The relay refused this device's own commit `seq` (`chain`/`conflict`): stuck until acked past it. */
  stuck(device: DeviceId, seq: number, code: string): void {
    this.#stuck.set(device, { space: this.#space, device, seq, code: `Relay:${code}` });
    this.#publish();
  }

  /** The relay acknowledged `device` up to `acked`: a commit stuck at or below it no longer is. */
  acked(device: string, acked: number): void {
    const s = this.#stuck.get(device);
    if (s && acked >= s.seq) {
      this.#stuck.delete(device);
      this.#publish();
    }
  }

  /** Forgets every damaged download (the space was discarded and is replayed). */
  reset(): void {
    this.refused.clear();
    this.#damaged.clear();
    this.#refetch = false;
    this.#publish();
  }

  #publish(): void {
    const first = new Map<string, { seq: number; bad: boolean }>();
    for (const [key, v] of this.#damaged) {
      const [device, seqText] = key.split(".");
      const seq = Number(seqText);
      const f = first.get(device!);
      if (!f || seq < f.seq) first.set(device!, { seq, bad: v.bad });
    }
    const missing: MissingCommits[] = [...first].map(([device, f]) => ({
      space: this.#space,
      device: device as DeviceId,
      seq: f.seq,
      reason: f.bad ? "bad-at-source" : "retrying",
    }));
    this.#report(missing, [...this.#stuck.values()]);
  }
}
