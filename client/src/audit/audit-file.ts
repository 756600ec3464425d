import { sha256 } from "../crypto/sha256.ts";
import { bytesEqual, fromHex, toHex } from "../protocol/hex.ts";

/**
 * The first 8 bytes of an audit file, PNG-style like a bundle's (`\x89SHB...`), with "SHA" for Shoal
 * audit: a file mangled by a 7-bit or text-mode transfer fails here.
 */
export const AUDIT_MAGIC: Uint8Array = new Uint8Array([0x89, 0x53, 0x48, 0x41, 0x0d, 0x0a, 0x1a, 0x0a]);
/** Audit file format version (independent of bundles, commits and the wire protocol). */
export const AUDIT_FORMAT_VERSION = 1;
/** Largest audit file read: 1 GiB, as a bundle. */
export const MAX_AUDIT_BYTES = 1024 * 1024 * 1024;

/** The sections of an audit file, in file order. */
export const SECTION_NAMES = ["scope", "commits", "keys", "summaries"] as const;
export type SectionName = (typeof SECTION_NAMES)[number];

const FIXED_HEADER = 35;
const ENTRY_BYTES = 1 + 8 + 8 + 32;
const HASH = 32;

/** A contiguous run of one device's commits carried: seqs `from..to`, all of them, in order. */
export interface AuditRun {
  readonly device: string;
  readonly from: number;
  readonly to: number;
}

/** Raw keys of one (device, epoch), as the keys section carries them. */
export interface AuditDeviceKeys {
  readonly device: string;
  readonly epoch: number;
  readonly commitKey: Uint8Array;
  readonly nonceKey: Uint8Array;
}

/** What `encodeAuditFile` writes. */
export interface AuditFileContents {
  readonly space: string;
  /** Canonical JSON of the scope (see `AuditScope`). */
  readonly scope: string;
  readonly runs: readonly AuditRun[];
  /** Whole sealed commits, run by run, each run's in seq order. */
  readonly commits: readonly Uint8Array[];
  readonly deviceKeys: readonly AuditDeviceKeys[];
  readonly nameKeys: ReadonlyMap<number, Uint8Array>;
  /** Canonical JSON of the summaries. */
  readonly summaries: string;
}

/** A place in the file a finding names. */
export interface AuditFinding {
  /** Section or part: "header", "file hash", "scope", "commits", "keys", "summaries", or a commit's name. */
  readonly where: string;
  /** File offset of the first byte concerned, when known. */
  readonly offset?: number;
  readonly message: string;
}

/** A commit as read from the file, with its place. */
export interface CarriedCommit {
  readonly offset: number;
  readonly bytes: Uint8Array;
}

/** What `readAuditFile` could read, and every structural problem found (never throws). */
export interface ReadAuditFile {
  readonly space?: string;
  readonly version?: number;
  readonly scopeText?: string;
  readonly scopeOffset?: number;
  readonly runs?: readonly AuditRun[];
  readonly commits?: readonly CarriedCommit[];
  readonly deviceKeys?: readonly (AuditDeviceKeys & { offset: number })[];
  readonly nameKeys?: ReadonlyMap<number, Uint8Array>;
  readonly summariesText?: string;
  readonly summariesOffset?: number;
  readonly findings: readonly AuditFinding[];
}

class Writer {
  readonly parts: Uint8Array[] = [];
  length = 0;
  bytes(b: Uint8Array): void {
    this.parts.push(b);
    this.length += b.length;
  }
  u8(n: number): void {
    this.bytes(new Uint8Array([n]));
  }
  u32(n: number): void {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, n);
    this.bytes(b);
  }
  u64(n: number): void {
    const b = new Uint8Array(8);
    const v = new DataView(b.buffer);
    v.setUint32(0, Math.floor(n / 2 ** 32));
    v.setUint32(4, n >>> 0);
    this.bytes(b);
  }
  finish(): Uint8Array<ArrayBuffer> {
    const out = new Uint8Array(this.length);
    let at = 0;
    for (const p of this.parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }
}

/** Reads big-endian fields at a tracked file offset; throws `Short` past the end of its window. */
class Reader {
  constructor(
    readonly bytes: Uint8Array,
    public pos: number,
    readonly end: number,
  ) {}
  #need(n: number, what: string): void {
    if (this.pos + n > this.end) throw new Short(this.pos, `${what} runs past the end of its section`);
  }
  u8(what: string): number {
    this.#need(1, what);
    return this.bytes[this.pos++]!;
  }
  u32(what: string): number {
    this.#need(4, what);
    const v = new DataView(this.bytes.buffer, this.bytes.byteOffset).getUint32(this.pos);
    this.pos += 4;
    return v;
  }
  u64(what: string): number {
    this.#need(8, what);
    const view = new DataView(this.bytes.buffer, this.bytes.byteOffset);
    const hi = view.getUint32(this.pos);
    const lo = view.getUint32(this.pos + 4);
    this.pos += 8;
    if (hi > 0x1fffff) throw new Short(this.pos - 8, `${what} is larger than 2^53 - 1`);
    return hi * 2 ** 32 + lo;
  }
  take(n: number, what: string): Uint8Array {
    this.#need(n, what);
    const out = this.bytes.slice(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
}

class Short extends Error {
  constructor(
    readonly offset: number,
    message: string,
  ) {
    super(message);
  }
}

function sectionBytes(c: AuditFileContents): Uint8Array[] {
  const enc = new TextEncoder();
  const commits = new Writer();
  commits.u32(c.runs.length);
  for (const r of c.runs) {
    commits.bytes(fromHex(r.device, 16));
    commits.u64(r.from);
    commits.u64(r.to);
  }
  commits.u32(c.commits.length);
  for (const b of c.commits) {
    commits.u32(b.length);
    commits.bytes(b);
  }
  const keys = new Writer();
  keys.u32(c.deviceKeys.length);
  for (const k of c.deviceKeys) {
    keys.bytes(fromHex(k.device, 16));
    keys.u32(k.epoch);
    keys.bytes(k.commitKey);
    keys.bytes(k.nonceKey);
  }
  const names = [...c.nameKeys].sort(([a], [b]) => a - b);
  keys.u32(names.length);
  for (const [epoch, key] of names) {
    keys.u32(epoch);
    keys.bytes(key);
  }
  return [enc.encode(c.scope), commits.finish(), keys.finish(), enc.encode(c.summaries)];
}

/**
 * Writes an audit file (PROTOCOL.md 11): magic, version, space, total length, a table of its four
 * sections (kind, offset, length, SHA-256 each), the header's SHA-256, the sections, then the SHA-256
 * of everything before it. The per-section hashes let a verifier say where a damaged byte is.
 *
 * @example
 * const file = await encodeAuditFile({ space, scope, runs, commits, deviceKeys, nameKeys, summaries });
 */
export async function encodeAuditFile(c: AuditFileContents): Promise<Uint8Array<ArrayBuffer>> {
  const sections = sectionBytes(c);
  const headerLength = FIXED_HEADER + ENTRY_BYTES * sections.length + HASH;
  const total = headerLength + sections.reduce((n, s) => n + s.length, 0) + HASH;
  const w = new Writer();
  w.bytes(AUDIT_MAGIC);
  w.u8(AUDIT_FORMAT_VERSION);
  w.u8(0);
  w.bytes(fromHex(c.space, 16));
  w.u64(total);
  w.u8(sections.length);
  let offset = headerLength;
  for (const [i, s] of sections.entries()) {
    w.u8(i + 1);
    w.u64(offset);
    w.u64(s.length);
    w.bytes(await sha256(s));
    offset += s.length;
  }
  w.bytes(await sha256(w.finish()));
  for (const s of sections) w.bytes(s);
  w.bytes(await sha256(w.finish()));
  return w.finish();
}

/**
 * Reads an audit file as far as it can, collecting every structural problem with its place instead
 * of throwing: a bad magic or version, a header, section or file hash that does not match, a section
 * that does not parse. What it could read is returned for the deeper checks (`verifyAudit`).
 */
export async function readAuditFile(bytes: Uint8Array): Promise<ReadAuditFile> {
  const findings: AuditFinding[] = [];
  const out: { -readonly [K in keyof ReadAuditFile]: ReadAuditFile[K] } = { findings };
  const fail = (where: string, message: string, offset?: number) =>
    findings.push({ where, message, ...(offset !== undefined && { offset }) });
  if (bytes.length > MAX_AUDIT_BYTES) {
    fail("file", `the file is ${bytes.length} bytes, more than an audit file may be`);
    return out;
  }
  const head = new Reader(bytes, 0, bytes.length);
  try {
    const magic = head.take(8, "magic");
    if (!bytesEqual(magic, AUDIT_MAGIC)) fail("header", "not an audit file (magic bytes differ)", 0);
    out.version = head.u8("version");
    if (out.version !== AUDIT_FORMAT_VERSION)
      fail("header", `audit format version ${out.version}, this verifier reads ${AUDIT_FORMAT_VERSION}`, 8);
    if (head.u8("flags") !== 0) fail("header", "unknown flags set", 9);
    out.space = toHex(head.take(16, "space id"));
    const total = head.u64("total length");
    if (total !== bytes.length)
      fail("header", `the header says ${total} bytes, the file has ${bytes.length} (cut or padded)`, 26);
    const count = head.u8("section count");
    if (count !== SECTION_NAMES.length)
      fail("header", `${count} sections, expected ${SECTION_NAMES.length}`, 34);
    const table: { kind: number; offset: number; length: number; hash: Uint8Array; at: number }[] = [];
    for (let i = 0; i < Math.min(count, SECTION_NAMES.length); i++) {
      const at = head.pos;
      table.push({
        kind: head.u8("kind"),
        offset: head.u64("offset"),
        length: head.u64("length"),
        hash: head.take(32, "hash"),
        at,
      });
    }
    const headerEnd = head.pos;
    const headerHash = head.take(32, "header hash");
    if (!bytesEqual(headerHash, await sha256(bytes.subarray(0, headerEnd))))
      fail(
        "header",
        `the header's SHA-256 (bytes 0 to ${headerEnd - 1}) does not match: the header was altered`,
        0,
      );
    if (
      bytes.length >= 32 &&
      !bytesEqual(bytes.subarray(bytes.length - 32), await sha256(bytes.subarray(0, bytes.length - 32)))
    )
      fail(
        "file hash",
        `the SHA-256 of the whole file (its last 32 bytes, at offset ${bytes.length - 32}) does not match`,
        bytes.length - 32,
      );
    let expected = headerEnd + 32;
    for (const [i, e] of table.entries()) {
      const name = SECTION_NAMES[i]!;
      if (e.kind !== i + 1) fail("header", `section entry ${i + 1} names kind ${e.kind}`, e.at);
      if (e.offset !== expected || e.offset + e.length > bytes.length - 32) {
        fail(
          name,
          `the header places section ${name} at ${e.offset}..${e.offset + e.length}, which is not where it can be`,
          e.at,
        );
        return out;
      }
      expected = e.offset + e.length;
      const body = bytes.subarray(e.offset, e.offset + e.length);
      if (!bytesEqual(e.hash, await sha256(body)))
        fail(
          name,
          `the SHA-256 of section ${name} (bytes ${e.offset} to ${e.offset + e.length - 1}) does not match: bytes in it were altered`,
          e.offset,
        );
      readSection(name, bytes, e.offset, e.length, out, fail);
    }
    if (table.length === SECTION_NAMES.length && expected !== bytes.length - 32)
      fail(
        "file",
        `${bytes.length - 32 - expected} bytes between the last section and the file hash`,
        expected,
      );
  } catch (e) {
    if (e instanceof Short) fail("header", e.message, e.offset);
    else fail("file", `unreadable: ${String(e)}`);
  }
  return out;
}

function readSection(
  name: SectionName,
  bytes: Uint8Array,
  offset: number,
  length: number,
  out: { -readonly [K in keyof ReadAuditFile]: ReadAuditFile[K] },
  fail: (where: string, message: string, offset?: number) => void,
): void {
  const r = new Reader(bytes, offset, offset + length);
  try {
    if (name === "scope" || name === "summaries") {
      const text = new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(offset, offset + length));
      if (name === "scope") [out.scopeText, out.scopeOffset] = [text, offset];
      else [out.summariesText, out.summariesOffset] = [text, offset];
      return;
    }
    if (name === "commits") {
      const runs: AuditRun[] = [];
      const nRuns = r.u32("run count");
      if (nRuns * 32 > length) throw new Short(offset, `a run count of ${nRuns} is larger than the section`);
      for (let i = 0; i < nRuns; i++)
        runs.push({ device: toHex(r.take(16, "run device")), from: r.u64("run from"), to: r.u64("run to") });
      out.runs = runs;
      const n = r.u32("commit count");
      const commits: CarriedCommit[] = [];
      for (let i = 0; i < n; i++) {
        const len = r.u32(`length of commit ${i + 1}`);
        const at = r.pos;
        commits.push({ offset: at, bytes: r.take(len, `commit ${i + 1}`) });
      }
      out.commits = commits;
    } else {
      const keys: (AuditDeviceKeys & { offset: number })[] = [];
      const n = r.u32("key count");
      for (let i = 0; i < n; i++) {
        const at = r.pos;
        keys.push({
          offset: at,
          device: toHex(r.take(16, "key device")),
          epoch: r.u32("key epoch"),
          commitKey: r.take(32, "commit key"),
          nonceKey: r.take(32, "nonce key"),
        });
      }
      const names = new Map<number, Uint8Array>();
      const m = r.u32("name key count");
      for (let i = 0; i < m; i++) names.set(r.u32("name key epoch"), r.take(32, "name key"));
      out.deviceKeys = keys;
      out.nameKeys = names;
    }
    if (r.pos !== offset + length)
      throw new Short(r.pos, `${offset + length - r.pos} unexpected bytes at its end`);
  } catch (e) {
    if (e instanceof Short) fail(name, `section ${name} does not parse: ${e.message}`, e.offset);
    else fail(name, `section ${name} does not parse: ${e instanceof Error ? e.message : String(e)}`, offset);
  }
}
