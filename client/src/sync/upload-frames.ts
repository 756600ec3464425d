/** One `commits` frame of an upload: consecutive sealed commits of one device. */
export interface UploadFrame {
  commits: Uint8Array[];
  /** Sequence number of the last commit in `commits`. */
  lastSeq: number;
  /** Bytes of the sealed commits together. */
  bytes: number;
}

/** Limits of the frames `uploadFrames` makes. */
export interface UploadFrameLimits {
  /** Most bytes of sealed commits in one frame (the frame limit less the frame's own fields). */
  frameBytes: number;
  /** Most commits in one frame (the protocol's batch limit). */
  frameCommits: number;
}

/** Commits read and sealed at first, before their size is known. */
const FIRST_SLICE = 4;
/** Most commits read and sealed at once, whatever their size (one IndexedDB read, one task). */
const MAX_SLICE = 64;

/**
 * The commits `from..to` of one device as upload frames, in order: each frame is yielded as soon as it
 * is full (or the range ends), and the commits are read and sealed (`seal`, e.g. `sealedRange`) in
 * slices of about what is missing to fill the current frame. So the first frame leaves after a few
 * commits are sealed (it was 64 at once, a second of sealing at 10,000 records before anything was
 * sent), the relay verifies and stores one frame while the next is sealed, and no slice holds the
 * thread for long. At most one frame and one slice of sealed bytes are held at a time, whatever the
 * range (100,000 records are never in memory together). The caller stops early by leaving its
 * `for await` (its window is full): what was sealed and not yielded is kept in `_sealed` by `seal`,
 * so the next call reads it back without sealing it again.
 *
 * @example
 * for await (const f of uploadFrames((a, b) => sealer.sealedRange(d, a, b), 1, 100, limits)) send(f);
 */
export async function* uploadFrames(
  seal: (from: number, to: number) => Promise<Uint8Array[]>,
  from: number,
  to: number,
  limits: UploadFrameLimits,
): AsyncGenerator<UploadFrame> {
  let batch: Uint8Array[] = [];
  let bytes = 0;
  let next = from;
  let sealedBytes = 0;
  let sealedCount = 0;
  while (next <= to) {
    // Enough commits to fill what is left of this frame, at the average size sealed so far.
    const average = sealedCount > 0 ? sealedBytes / sealedCount : 0;
    const wanted = average > 0 ? Math.ceil(Math.max(1, limits.frameBytes - bytes) / average) : FIRST_SLICE;
    const room = limits.frameCommits - batch.length;
    const count = Math.max(1, Math.min(wanted, MAX_SLICE, room, to - next + 1));
    const sealed = await seal(next, next + count - 1);
    for (let i = 0; i < sealed.length; i++) {
      const s = sealed[i]!;
      sealedBytes += s.length;
      sealedCount++;
      if (batch.length > 0 && (bytes + s.length > limits.frameBytes || batch.length >= limits.frameCommits)) {
        yield { commits: batch, lastSeq: next + i - 1, bytes };
        batch = [];
        bytes = 0;
      }
      batch.push(s);
      bytes += s.length;
    }
    next += sealed.length;
    if (sealed.length === 0) break;
    // The next commit would most likely not fit: send this frame now rather than after sealing more.
    const full = bytes + sealedBytes / sealedCount > limits.frameBytes || batch.length >= limits.frameCommits;
    if (full && next <= to) {
      yield { commits: batch, lastSeq: next - 1, bytes };
      batch = [];
      bytes = 0;
    }
  }
  if (batch.length > 0) yield { commits: batch, lastSeq: next - 1, bytes };
}
