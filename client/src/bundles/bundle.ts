import { sha256 } from "../crypto/seal.ts";
import { InvalidBundle, ProtocolError } from "../errors.ts";
import {
  HASH_BYTES,
  ID_BYTES,
  MAX_COMMIT_BYTES,
  MAX_SEQ,
  MAX_VECTOR_ENTRIES,
  MIN_COMMIT_BODY_BYTES,
  SEALED_COMMIT_FIXED_BYTES,
  bytesEqual,
  decodeSealedCommit,
  fromHex,
  isIdHex,
  toHex,
} from "../protocol/index.ts";
import { ByteReader } from "../protocol/byte-reader.ts";
import { ByteWriter } from "../protocol/byte-writer.ts";
import type { DeviceId, SpaceId } from "../types.ts";

/**
 * The first 8 bytes of every bundle, PNG-style: the high-bit byte catches 7-bit transfers, "SHB" names
 * the format for people looking at a hex dump, CR LF catches line-ending conversion, 0x1A stops a DOS
 * `type`, and the final LF catches the reverse conversion. A file mangled as text fails here, before
 * any hash is computed.
 */
export const BUNDLE_MAGIC: Uint8Array = new Uint8Array([0x89, 0x53, 0x48, 0x42, 0x0d, 0x0a, 0x1a, 0x0a]);
/** Bundle format version (independent of the wire protocol and of the commit format). */
export const BUNDLE_FORMAT_VERSION = 1;
/**
 * Largest bundle a decoder accepts by default: 1 GiB. A bundle is held in memory whole (the hash covers
 * it all), so this bounds what a hostile file can make a device allocate.
 */
export const MAX_BUNDLE_BYTES = 1024 * 1024 * 1024;

/** Offsets of the fixed part of the header (PROTOCOL.md, "Bundles"). */
const VERSION_AT = 8;
const FLAGS_AT = 9;
const SPACE_AT = 10;
const TOTAL_AT = 26;
const FIXED_HEADER_BYTES = 34;
/** End marker: a zero commit length (no commit is empty), the commit count, the file hash. */
const END_MARKER_BYTES = 4 + 4 + HASH_BYTES;
/** Flag bit 0: the bundle was made against a receiver's vector (`since`); clear means the whole space. */
const FLAG_SINCE = 0x01;
/** The smallest sealed commit: header, body length, and an empty body's nonce and tag. */
const MIN_SEALED_BYTES = SEALED_COMMIT_FIXED_BYTES + MIN_COMMIT_BODY_BYTES;

/** The commits of one device a bundle carries: seqs `from..to`, all of them, in order. */
export interface BundleRange {
  readonly device: DeviceId;
  readonly from: number;
  readonly to: number;
}

/** What `encodeBundle` writes. */
export interface BundleContents {
  readonly space: SpaceId;
  /**
   * Per device of the space, the highest seq the receiver already holds (its version vector for this
   * space). Absent: the bundle carries the whole space, every device from seq 1.
   */
  readonly since?: Readonly<Record<string, number>>;
  /**
   * Whole sealed commits of `space`, exactly as on the wire, each device's in seq order starting right
   * after its `since` entry (devices may interleave: a causal order keeps every prefix applicable).
   */
  readonly commits: readonly Uint8Array[];
}

/** A decoded bundle: the header, and the whole commits found (a prefix of them if `complete` is false). */
export interface DecodedBundle {
  readonly space: SpaceId;
  /** The receiver's vector the bundle was made against; undefined for a whole-space bundle. */
  readonly since: Readonly<Record<string, number>> | undefined;
  /** What the complete bundle carries, per device, ascending by device id. */
  readonly ranges: readonly BundleRange[];
  /** The whole sealed commits read, in file order. Structurally checked and of `space`; not opened. */
  readonly commits: readonly Uint8Array[];
  /** True only when the file ended with its end marker and the SHA-256 over the whole file matched. */
  readonly complete: boolean;
}

/**
 * Writes a bundle: a self-describing file of sealed commits for carrying by hand (PROTOCOL.md,
 * "Bundles"). The commits stay sealed: the file shows what the relay's store shows (ids, seqs, sizes)
 * and nothing else. Checks that the commits are of `space` and contiguous per device from `since`.
 *
 * @example
 * const file = await encodeBundle({ space, since: { [deviceA]: 3 }, commits: sealedA4to9 });
 * new Blob([file], { type: "application/vnd.shoal.bundle" });
 */
export async function encodeBundle(contents: BundleContents): Promise<Uint8Array<ArrayBuffer>> {
  if (!isIdHex(contents.space))
    throw new InvalidBundle("malformed", "A bundle needs a space id (32 lowercase hex characters).");
  const spaceBytes = fromHex(contents.space, ID_BYTES);
  const since = contents.since === undefined ? undefined : canonicalSince(contents.since);
  // Per device: the next seq expected, then the range actually carried.
  const next = new Map<string, number>();
  const ranges = new Map<string, { from: number; to: number }>();
  let commitBytes = 0;
  for (const bytes of contents.commits) {
    const { header } = decodeSealedCommit(bytes);
    if (!bytesEqual(header.space, spaceBytes))
      throw new InvalidBundle("foreign", "A bundle can only carry commits of its own space.");
    const device = toHex(header.device);
    const expected = next.get(device) ?? (since?.get(device) ?? 0) + 1;
    if (header.seq !== expected) {
      throw new InvalidBundle(
        "malformed",
        `Commit ${header.seq} of device ${device} is out of order: expected ${expected}.`,
      );
    }
    next.set(device, expected + 1);
    const range = ranges.get(device);
    if (range) range.to = header.seq;
    else ranges.set(device, { from: header.seq, to: header.seq });
    commitBytes += 4 + bytes.length;
  }
  const sinceEntries = since ? [...since] : [];
  const rangeEntries = [...ranges].sort(([a], [b]) => (a < b ? -1 : 1));
  if (rangeEntries.length > MAX_VECTOR_ENTRIES) {
    throw new InvalidBundle("too-large", `A bundle carries at most ${MAX_VECTOR_ENTRIES} devices.`);
  }
  if (contents.commits.length > 0xffffffff)
    throw new InvalidBundle("too-large", "Too many commits for one bundle.");
  const headerBytes =
    FIXED_HEADER_BYTES + 2 + 24 * sinceEntries.length + 2 + 32 * rangeEntries.length + HASH_BYTES;
  const total = headerBytes + commitBytes + END_MARKER_BYTES;
  if (total > MAX_BUNDLE_BYTES)
    throw new InvalidBundle("too-large", `A bundle of ${total} bytes exceeds ${MAX_BUNDLE_BYTES}.`);

  const w = new ByteWriter(total);
  w.bytes(BUNDLE_MAGIC);
  w.u8(BUNDLE_FORMAT_VERSION);
  w.u8(since ? FLAG_SINCE : 0);
  w.bytes(spaceBytes);
  w.u64(total);
  w.u16(sinceEntries.length);
  for (const [device, seq] of sinceEntries) {
    w.bytes(fromHex(device, ID_BYTES));
    w.u64(seq);
  }
  w.u16(rangeEntries.length);
  for (const [device, { from, to }] of rangeEntries) {
    w.bytes(fromHex(device, ID_BYTES));
    w.u64(from);
    w.u64(to);
  }
  // The header gets its own hash, so a truncated file (whose end hash is gone) still has a trustworthy
  // description of what it should have carried: the space and the ranges that "missing" is computed from.
  w.bytes(await sha256(w.finish()));
  for (const bytes of contents.commits) {
    w.u32(bytes.length);
    w.bytes(bytes);
  }
  w.u32(0);
  w.u32(contents.commits.length);
  // Written into one buffer of the final size, so a large bundle is not copied once more for its hash.
  const hashed = w.finish();
  const out = new Uint8Array(total);
  out.set(hashed);
  out.set(await sha256(hashed), hashed.length);
  return out;
}

/**
 * Reads a bundle, checking in order: size cap, magic, version, the fixed header, the whole-file hash
 * when the file is as long as it declares (so any altered byte of a complete file is `corrupt` before
 * anything else is looked at), the rest of the header and its hash, then each commit's framing, sealed
 * header, space and place in its device's range. A file shorter than it declares is truncated: the whole
 * commits before the cut are returned with `complete: false`. Throws `InvalidBundle` otherwise.
 *
 * Opening the commits (keys, chain hashes) is the importer's job: this is pure and needs no database.
 *
 * @example
 * const b = await decodeBundle(new Uint8Array(await file.arrayBuffer()));
 * if (!b.complete) console.warn(`only ${b.commits.length} commits arrived`);
 */
export async function decodeBundle(
  bytes: Uint8Array,
  options: { maxBytes?: number } = {},
): Promise<DecodedBundle> {
  const maxBytes = options.maxBytes ?? MAX_BUNDLE_BYTES;
  if (bytes.length > maxBytes)
    throw new InvalidBundle("too-large", `A bundle of ${bytes.length} bytes exceeds ${maxBytes}.`);
  const magicPart = bytes.subarray(0, BUNDLE_MAGIC.length);
  if (!bytesEqual(magicPart, BUNDLE_MAGIC.subarray(0, magicPart.length))) {
    throw new InvalidBundle("not-a-bundle", "This file is not a Shoal bundle.");
  }
  if (bytes.length <= VERSION_AT) throw new InvalidBundle("truncated", "The bundle ends inside its header.");
  if (bytes[VERSION_AT] !== BUNDLE_FORMAT_VERSION) {
    throw new InvalidBundle(
      "unsupported-version",
      `Bundle format version ${bytes[VERSION_AT]} is not supported.`,
    );
  }
  if (bytes.length < FIXED_HEADER_BYTES)
    throw new InvalidBundle("truncated", "The bundle ends inside its header.");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const total = view.getUint32(TOTAL_AT) * 2 ** 32 + view.getUint32(TOTAL_AT + 4);
  if (bytes.length > total)
    throw new InvalidBundle("corrupt", "The bundle has bytes after its declared end.");
  const complete = bytes.length === total;
  if (complete) {
    // Before parsing anything variable: a complete file must match its hash, whatever byte was altered.
    const end = total - HASH_BYTES;
    if (end < FIXED_HEADER_BYTES || !bytesEqual(await sha256(bytes.subarray(0, end)), bytes.subarray(end))) {
      throw new InvalidBundle("corrupt", "The bundle's SHA-256 does not match: it was altered or damaged.");
    }
  } else if (total > maxBytes) {
    throw new InvalidBundle("corrupt", "The bundle declares an impossible length.");
  }

  const r = new ByteReader(bytes);
  const { flags, space, since, ranges } = await readHeader(r, bytes, complete);
  if ((flags & FLAG_SINCE) === 0 && ranges.some((x) => x.from !== 1)) {
    throw new InvalidBundle("malformed", "A whole-space bundle must carry every device from seq 1.");
  }
  // Past the header, a complete file is hash-verified: a bad structure there is a writer's bug. In a
  // truncated file nothing vouches for the bytes, so the same failure is called damage.
  const damaged = complete ? "malformed" : "corrupt";
  const spaceBytes = fromHex(space, ID_BYTES);
  const byDevice = new Map(ranges.map((x) => [x.device as string, { ...x, next: x.from }]));
  const commits: Uint8Array[] = [];
  for (;;) {
    if (r.remaining < 4) {
      if (complete) throw new InvalidBundle("malformed", "The bundle has no end marker.");
      break;
    }
    const length = r.u32("commit length");
    if (length === 0) {
      if (r.remaining < 4 + HASH_BYTES) break; // cut inside the end marker: nothing more to read
      const count = r.u32("commit count");
      r.bytes(HASH_BYTES, "bundle hash"); // checked above: only a complete file gets here
      r.end("bundle");
      if (count !== commits.length || [...byDevice.values()].some((d) => d.next !== d.to + 1)) {
        throw new InvalidBundle("malformed", "The bundle's commits do not match its table of contents.");
      }
      return { space, since, ranges, commits, complete };
    }
    if (length < MIN_SEALED_BYTES || length > MAX_COMMIT_BYTES) {
      throw new InvalidBundle(damaged, `A commit of ${length} bytes cannot be in a bundle.`);
    }
    if (r.remaining < length) break; // the cut: what came before is whole
    const sealed = r.bytes(length, "commit");
    let header;
    try {
      header = decodeSealedCommit(sealed).header;
    } catch (e) {
      throw new InvalidBundle(damaged, `A commit of the bundle is malformed: ${(e as Error).message}`, {
        cause: e,
      });
    }
    if (!bytesEqual(header.space, spaceBytes)) {
      throw new InvalidBundle("foreign", `The bundle of space ${space} carries a commit of another space.`);
    }
    const d = byDevice.get(toHex(header.device));
    if (!d || header.seq !== d.next || header.seq > d.to) {
      throw new InvalidBundle(damaged, "A commit of the bundle is not where its table of contents says.");
    }
    d.next++;
    commits.push(sealed);
  }
  // Only a truncated file reaches this point (a complete one returns at its end marker or throws).
  return { space, since, ranges, commits, complete: false };
}

async function readHeader(
  r: ByteReader,
  bytes: Uint8Array,
  complete: boolean,
): Promise<{
  flags: number;
  space: SpaceId;
  since: Record<string, number> | undefined;
  ranges: BundleRange[];
}> {
  try {
    r.bytes(FLAGS_AT, "magic and version");
    const flags = r.u8("flags");
    if ((flags & ~FLAG_SINCE) !== 0) throw new InvalidBundle("malformed", "Unknown bundle flags are set.");
    const space = toHex(r.bytes(ID_BYTES, "space")) as SpaceId;
    r.u32("total length (high)");
    r.u32("total length (low)");
    const sinceCount = r.u16("since count");
    if (sinceCount > MAX_VECTOR_ENTRIES)
      throw new InvalidBundle("too-large", "The bundle's vector is too long.");
    if ((flags & FLAG_SINCE) === 0 && sinceCount !== 0)
      throw new InvalidBundle("malformed", "A whole-space bundle has a vector.");
    const since: Record<string, number> = {};
    let last = "";
    for (let i = 0; i < sinceCount; i++) {
      const device = toHex(r.bytes(ID_BYTES, "since device"));
      if (device <= last)
        throw new InvalidBundle("malformed", "The bundle's vector is not in ascending device order.");
      last = device;
      since[device] = r.seq("since seq");
    }
    const rangeCount = r.u16("range count");
    if (rangeCount > MAX_VECTOR_ENTRIES)
      throw new InvalidBundle("too-large", "The bundle's table of contents is too long.");
    const ranges: BundleRange[] = [];
    last = "";
    for (let i = 0; i < rangeCount; i++) {
      const device = toHex(r.bytes(ID_BYTES, "range device"));
      if (device <= last)
        throw new InvalidBundle(
          "malformed",
          "The bundle's table of contents is not in ascending device order.",
        );
      last = device;
      const from = r.seq("range from");
      const to = r.seq("range to");
      if (from > to || from !== (since[device] ?? 0) + 1) {
        throw new InvalidBundle(
          "malformed",
          "A range of the bundle does not start right after the vector it was made against.",
        );
      }
      ranges.push({ device: device as DeviceId, from, to });
    }
    const headerEnd = bytes.length - r.remaining;
    const declared = r.bytes(HASH_BYTES, "header hash");
    if (!bytesEqual(await sha256(bytes.subarray(0, headerEnd)), declared)) {
      throw new InvalidBundle(
        "corrupt",
        "The bundle's header hash does not match: it was altered or damaged.",
      );
    }
    return { flags, space, since: (flags & FLAG_SINCE) !== 0 ? since : undefined, ranges };
  } catch (e) {
    if (e instanceof InvalidBundle) {
      // Checks on a header that is not hash-verified yet: an altered byte is the likelier story.
      if (!complete && e.reason === "malformed") throw new InvalidBundle("corrupt", e.message, { cause: e });
      throw e;
    }
    if (e instanceof ProtocolError && e.reason === "truncated" && !complete) {
      throw new InvalidBundle("truncated", "The bundle ends inside its header: there is nothing to import.", {
        cause: e,
      });
    }
    throw new InvalidBundle(
      complete ? "malformed" : "corrupt",
      `The bundle's header is malformed: ${(e as Error).message}`,
      { cause: e },
    );
  }
}

/** The `since` entries worth writing (seq >= 1), ascending by device, validated. */
function canonicalSince(since: Readonly<Record<string, number>>): Map<string, number> {
  const entries = Object.entries(since).filter(([, seq]) => seq !== 0);
  for (const [device, seq] of entries) {
    if (!isIdHex(device)) throw new InvalidBundle("malformed", `"${device}" is not a device id.`);
    if (!Number.isSafeInteger(seq) || seq < 0 || seq > MAX_SEQ)
      throw new InvalidBundle("malformed", `Bad seq ${seq} for device ${device}.`);
  }
  if (entries.length > MAX_VECTOR_ENTRIES)
    throw new InvalidBundle("too-large", `A bundle's vector has at most ${MAX_VECTOR_ENTRIES} devices.`);
  return new Map(entries.sort(([a], [b]) => (a < b ? -1 : 1)));
}
