import { DecryptError, ValidationError } from "../errors.ts";

/** Bytes of the big-endian length prefix in front of the plaintext. */
const PREFIX = 4;
/** Smallest bucket: a typical one-field edit fits, so small edits all look alike. */
const MIN_BUCKET = 256;
/** Above this, buckets grow linearly instead of doubling. */
const LINEAR_STEP = 64 * 1024;

/**
 * The padded size for a plaintext of `length` bytes: the size of the smallest bucket that holds the
 * 4-byte length prefix plus the plaintext. Buckets are 256 B, then every power of two up to 64 KiB
 * (512, 1 KiB, ..., 64 KiB), then every multiple of 64 KiB.
 *
 * Why these: the relay sees only padded sizes, so the fewer distinct sizes, the less it learns. Below
 * 256 B lie most single edits (a field or two of a record), which then all look the same. Powers of two
 * up to 64 KiB leave only 9 sizes for ordinary commits at a cost of at most 2x. Beyond 64 KiB (imports,
 * snapshots) doubling would waste up to half of megabytes, so the overhead is capped at 64 KiB per
 * commit instead, under 50% and shrinking as commits grow.
 *
 * @throws {ValidationError} on a length that is negative, fractional, or too big for the prefix.
 * @example
 * paddedSize(0);      // 256
 * paddedSize(252);    // 256
 * paddedSize(253);    // 512
 * paddedSize(70_000); // 131072
 */
export function paddedSize(length: number): number {
  if (!Number.isInteger(length) || length < 0 || length > 0xffffffff - PREFIX) {
    throw new ValidationError(`A plaintext length must be an integer from 0 to 2^32-5, got ${length}.`);
  }
  const framed = length + PREFIX;
  if (framed <= MIN_BUCKET) return MIN_BUCKET;
  if (framed <= LINEAR_STEP) return 2 ** Math.ceil(Math.log2(framed));
  return Math.ceil(framed / LINEAR_STEP) * LINEAR_STEP;
}

/**
 * Frames a plaintext as length prefix (u32 big-endian) || plaintext || zero bytes, to `paddedSize`.
 *
 * @example
 * pad(new Uint8Array(10)).length; // 256
 */
export function pad(plaintext: Uint8Array): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(paddedSize(plaintext.length));
  new DataView(out.buffer).setUint32(0, plaintext.length);
  out.set(plaintext, PREFIX);
  return out;
}

/**
 * Undoes `pad`, strictly: the total must be exactly the bucket for the stated length and every padding
 * byte must be zero, so a padded plaintext has exactly one valid form.
 *
 * @throws {DecryptError} on a frame that `pad` could not have produced.
 * @example
 * unpad(pad(bytes)); // equal to bytes
 */
export function unpad(padded: Uint8Array): Uint8Array {
  return unpaddedView(padded).slice();
}

/**
 * `unpad` without the copy: the plaintext as a view of `padded` (which it keeps alive, with at most
 * 64 KiB of padding). For megabytes (a snapshot), where the copy alone held the page for 25 ms.
 *
 * @throws {DecryptError} on a frame that `pad` could not have produced.
 * @example
 * unpaddedView(pad(bytes)); // equal to bytes
 */
export function unpaddedView(padded: Uint8Array): Uint8Array {
  if (padded.length < MIN_BUCKET) throw badPadding("shorter than the smallest bucket");
  const length = new DataView(padded.buffer, padded.byteOffset, padded.byteLength).getUint32(0);
  if (length > padded.length - PREFIX || paddedSize(length) !== padded.length) {
    throw badPadding("its length prefix does not match its size");
  }
  for (let i = PREFIX + length; i < padded.length; i++) {
    if (padded[i] !== 0) throw badPadding("its padding is not zero");
  }
  return padded.subarray(PREFIX, PREFIX + length);
}

function badPadding(why: string): DecryptError {
  return new DecryptError(
    `A commit decrypted but its padding is invalid (${why}); it was not sealed by Shoal.`,
  );
}
