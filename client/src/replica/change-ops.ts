/**
 * Counts the operations of one binary Automerge change without decoding it: reads the change header
 * (PROTOCOL.md 3.2 points to Automerge's binary format) and sums the run lengths of its `action`
 * column, which holds one entry per operation. `A.decodeChange` would give the same number but
 * materializes every operation (about 4 µs each, 160 ms for a 40,000-key change); this reads a few
 * bytes per run. Returns null when the bytes are not an uncompressed change chunk this reader
 * understands (a compressed chunk, a deflated column, a truncated header): Automerge itself never
 * makes those for a local change, so a receiver refuses them.
 *
 * @example
 * const ops = changeOpCount(A.getLastLocalChange(doc)!); // 3 for a change that set three keys
 */
export function changeOpCount(bytes: Uint8Array): number | null {
  return changeOps(bytes)?.ops ?? null;
}

/**
 * The operations of one binary Automerge change, read as `changeOpCount` does, and whether any of them
 * is of a kind Shoal never makes: marks (rich-text formatting spans, action 7), tables (action 6) or an
 * action this reader does not know. Applying marks costs 80-200 µs per operation in a long text, 40x
 * an ordinary one, so receivers refuse them (PROTOCOL.md 3.2). Null when the bytes are not readable.
 *
 * @example
 * const read = changeOps(change);
 * if (!read || read.foreign) refuse();
 */
export function changeOps(bytes: Uint8Array): { ops: number; foreign: boolean } | null {
  try {
    return count(bytes);
  } catch {
    return null;
  }
}

const MAGIC = [0x85, 0x6f, 0x4a, 0x83];
const CHUNK_CHANGE = 1;
/** Column spec of `action`: column id 4, type unsigned LEB128 (2), not deflated. */
const ACTION_COLUMN = (4 << 4) | 2;
const DEFLATE_BIT = 8;

/** Highest action Shoal makes: 0 makeMap, 1 set, 2 makeList, 3 del, 4 makeText, 5 inc. */
const MAX_SHOAL_ACTION = 5;

function count(b: Uint8Array): { ops: number; foreign: boolean } | null {
  for (let i = 0; i < 4; i++) if (b[i] !== MAGIC[i]) return null;
  if (b[8] !== CHUNK_CHANGE) return null;
  const r = { pos: 9 };
  const length = uleb(b, r);
  const end = r.pos + length;
  if (end > b.length) return null;
  const deps = uleb(b, r);
  r.pos += deps * 32;
  skip(b, r); // actor
  uleb(b, r); // seq
  uleb(b, r); // startOp
  sleb(b, r); // time
  skip(b, r); // message
  const others = uleb(b, r);
  for (let i = 0; i < others; i++) skip(b, r);
  const columns = uleb(b, r);
  let offset = 0;
  let action: { at: number; len: number } | null = null;
  for (let i = 0; i < columns; i++) {
    const spec = uleb(b, r);
    const len = uleb(b, r);
    if (spec & DEFLATE_BIT) return null;
    if (spec === ACTION_COLUMN) action = { at: offset, len };
    offset += len;
  }
  const dataStart = r.pos;
  if (r.pos > end || dataStart + offset > end) return null;
  if (!action) return { ops: 0, foreign: false };
  // Run-length encoding of unsigned integers: a signed count n; n > 0: one value repeated n times;
  // n < 0: -n literal values; n = 0: a run of nulls whose length follows.
  const c = { pos: dataStart + action.at };
  const stop = c.pos + action.len;
  let ops = 0;
  let foreign = false;
  while (c.pos < stop) {
    const n = sleb(b, c);
    if (n > 0) {
      if (uleb(b, c) > MAX_SHOAL_ACTION) foreign = true;
      ops += n;
    } else if (n < 0) {
      for (let i = 0; i < -n; i++) if (uleb(b, c) > MAX_SHOAL_ACTION) foreign = true;
      ops += -n;
    } else ops += uleb(b, c);
    if (!Number.isSafeInteger(ops)) return null;
  }
  return c.pos === stop ? { ops, foreign } : null;
}

/** Skips a length-prefixed field (`r.pos += uleb(b, r)` would lose the length's own bytes). */
function skip(b: Uint8Array, r: { pos: number }): void {
  const len = uleb(b, r);
  r.pos += len;
}

/** Reads an unsigned LEB128 at `r.pos` (at most 8 bytes) and moves past it; `RangeError` if cut short. */
export function uleb(b: Uint8Array, r: { pos: number }): number {
  let out = 0;
  let scale = 1;
  for (let i = 0; i < 8; i++) {
    const x = b[r.pos++];
    if (x === undefined) throw new RangeError("truncated");
    out += (x & 0x7f) * scale;
    if ((x & 0x80) === 0) return out;
    scale *= 128;
  }
  throw new RangeError("LEB128 too long");
}

function sleb(b: Uint8Array, r: { pos: number }): number {
  let out = 0;
  let scale = 1;
  for (let i = 0; i < 10; i++) {
    const x = b[r.pos++];
    if (x === undefined) throw new RangeError("truncated");
    out += (x & 0x7f) * scale;
    scale *= 128;
    if ((x & 0x80) === 0) return x & 0x40 ? out - scale : out;
  }
  throw new RangeError("LEB128 too long");
}
