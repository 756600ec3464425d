import { ProtocolError } from "../errors.ts";
import { ByteReader } from "./byte-reader.ts";
import { ByteWriter } from "./byte-writer.ts";
import { checkBytes, checkId, checkInt, checkSeq } from "./field-checks.ts";
import { bytesEqual, toHex } from "./hex.ts";
import {
  HELLO_FRAME_VERSION,
  ID_BYTES,
  MAX_ERROR_MESSAGE_BYTES,
  MAX_SIGNAL_PAYLOAD_BYTES,
  MAX_SNAPSHOT_PARTS,
  PROTOCOL_VERSION,
  MIN_PROTOCOL_VERSION,
  resolveLimits,
  type ProtocolLimits,
} from "./limits.ts";
import {
  ERROR_CODE_BYTES,
  MESSAGE_TYPE_BYTES,
  type ErrorCodeName,
  type Message,
  type MessageType,
  type VectorEntry,
} from "./messages.ts";
import { decodeSealedCommit, SEALED_COMMIT_OVERHEAD } from "./sealed-commit.ts";

const HELLO_TYPE = MESSAGE_TYPE_BYTES.hello;
const ERROR_TYPE = MESSAGE_TYPE_BYTES.error;
const TYPE_BY_BYTE = new Map(Object.entries(MESSAGE_TYPE_BYTES).map(([k, v]) => [v, k as MessageType]));
const CODE_BY_BYTE = new Map(Object.entries(ERROR_CODE_BYTES).map(([k, v]) => [v, k as ErrorCodeName]));
const FLAG_MORE = 0x01;
const FLAG_REPLY = 0x02;
const FLAG_REPLACE = 0x04;
const FLAG_FATAL = 0x01;
const FLAG_HAS_COMMIT = 0x02;
const utf8Decoder = new TextDecoder("utf-8", { fatal: true });
const utf8Encoder = new TextEncoder();

/**
 * Encodes a message as one binary frame: version byte, type byte, then the fields of that type
 * (PROTOCOL.md, "Frames"). Validates every field with the decoder's rules and the default limits, and
 * throws `ProtocolError` instead of emitting a frame the other side would refuse.
 *
 * @example
 * ws.send(encodeMessage({ type: "pull", space, vector: [], maxBytes: 1 << 20 }));
 */
export function encodeMessage(m: Message, limits?: Partial<ProtocolLimits>): Uint8Array {
  const lim = resolveLimits(limits);
  // A commits frame is mostly its commits: sized for them up front, it is written without regrowing.
  const w = new ByteWriter(m.type === "commits" ? commitsFrameBytes(m.commits) : undefined);
  // hello keeps version 1's layout and version byte for ever, so any two implementations can negotiate.
  w.u8(m.type === "hello" ? HELLO_FRAME_VERSION : PROTOCOL_VERSION);
  const typeByte = MESSAGE_TYPE_BYTES[m.type];
  if (typeByte === undefined)
    throw new ProtocolError("unknown-type", `Unknown message type ${String(m.type)}.`);
  w.u8(typeByte);
  switch (m.type) {
    case "hello":
      w.u8(checkInt(m.minVersion, 1, 255, "minVersion"));
      w.u8(checkInt(m.maxVersion, m.minVersion, 255, "maxVersion"));
      w.bytes(checkId(m.device, "device"));
      break;
    case "welcome":
      w.u8(checkInt(m.version, 1, 255, "version"));
      w.u8(m.more ? FLAG_MORE : 0);
      writeVector(w, m.vector, lim);
      break;
    case "pull":
      w.bytes(checkId(m.space, "space"));
      w.u32(checkInt(m.maxBytes, 1, 0xffffffff, "maxBytes"));
      w.u8(m.more ? FLAG_MORE : 0);
      writeVector(w, m.vector, lim);
      break;
    case "commits": {
      const space = checkId(m.space, "space");
      w.bytes(space);
      if (m.replace && (m.more || m.reply))
        throw new ProtocolError("bad-field", "A replacement is an upload: neither more nor reply.");
      w.u8((m.more ? FLAG_MORE : 0) | (m.reply ? FLAG_REPLY : 0) | (m.replace ? FLAG_REPLACE : 0));
      if (m.commits.length > lim.maxCommitsPerBatch) {
        throw new ProtocolError("oversized", `More than ${lim.maxCommitsPerBatch} commits in one frame.`);
      }
      w.u16(m.commits.length);
      for (const c of m.commits) {
        const { header } = decodeSealedCommit(c, lim);
        if (!bytesEqual(header.space, space))
          throw new ProtocolError("bad-field", "A commit belongs to another space.");
        w.u32(c.length);
        w.bytes(c);
      }
      break;
    }
    case "ack":
      w.bytes(checkId(m.space, "space"));
      writeVector(w, m.entries, lim);
      break;
    case "error": {
      const code = ERROR_CODE_BYTES[m.code];
      if (code === undefined) throw new ProtocolError("bad-field", `Unknown error code ${String(m.code)}.`);
      const text = utf8Encoder.encode(m.message);
      if (text.length > MAX_ERROR_MESSAGE_BYTES) {
        throw new ProtocolError("oversized", `Error message over ${MAX_ERROR_MESSAGE_BYTES} bytes.`);
      }
      const hasCommit = m.device !== undefined || m.seq !== undefined;
      w.u8(code);
      w.u8((m.fatal ? FLAG_FATAL : 0) | (hasCommit ? FLAG_HAS_COMMIT : 0));
      w.u16(text.length);
      w.bytes(text);
      if (hasCommit) {
        w.bytes(checkId(m.device, "error device"));
        w.u64(checkSeq(m.seq, "error seq"));
      }
      break;
    }
    case "ping":
    case "pong":
      w.u32(checkInt(m.nonce, 0, 0xffffffff, "nonce"));
      break;
    case "snapshot-put":
    case "snapshot": {
      w.bytes(checkId(m.space, "space"));
      const parts = checkInt(m.parts, m.type === "snapshot-put" ? 1 : 0, MAX_SNAPSHOT_PARTS, "parts");
      const part = checkInt(m.part, 0, Math.max(parts - 1, 0), "part");
      if (!(m.bytes instanceof Uint8Array))
        throw new ProtocolError("bad-field", "snapshot bytes must be a Uint8Array.");
      if (!Array.isArray(m.vector)) throw new ProtocolError("bad-field", "snapshot vector must be an array.");
      if (parts === 0 && (m.vector.length > 0 || m.bytes.length > 0)) {
        throw new ProtocolError("bad-field", "A snapshot frame with parts 0 carries no vector and no bytes.");
      }
      if (m.bytes.length > lim.maxFrameBytes) {
        throw new ProtocolError("oversized", `Snapshot part of ${m.bytes.length} bytes exceeds one frame.`);
      }
      w.u16(part);
      w.u16(parts);
      writeVector(w, m.vector, lim);
      w.u32(m.bytes.length);
      w.bytes(m.bytes);
      break;
    }
    case "snapshot-get":
      w.bytes(checkId(m.space, "space"));
      break;
    case "snapshot-stored":
      w.bytes(checkId(m.space, "space"));
      writeVector(w, m.vector, lim);
      break;
    case "signal":
      w.bytes(checkId(m.space, "space"));
      w.bytes(checkId(m.from, "from"));
      w.bytes(checkId(m.to, "to"));
      if (!(m.payload instanceof Uint8Array))
        throw new ProtocolError("bad-field", "signal payload must be a Uint8Array.");
      if (m.payload.length > MAX_SIGNAL_PAYLOAD_BYTES) {
        throw new ProtocolError("oversized", `Signal payload over ${MAX_SIGNAL_PAYLOAD_BYTES} bytes.`);
      }
      w.u16(m.payload.length);
      w.bytes(m.payload);
      break;
  }
  const frame = w.finish();
  if (frame.length > lim.maxFrameBytes) {
    throw new ProtocolError("oversized", `Frame of ${frame.length} bytes exceeds ${lim.maxFrameBytes}.`);
  }
  return frame;
}

/**
 * Decodes and validates one frame. Checks, in order: size cap (`oversized`), header (`truncated`),
 * version (`unknown-version`), type (`unknown-type`), every field (`truncated`, `bad-field`,
 * `oversized` for counts over the limits, plus the sealed-commit checks of each commit), and that
 * nothing follows (`trailing-bytes`). Throws `ProtocolError` with that `reason`.
 *
 * @example
 * try { handle(decodeMessage(new Uint8Array(event.data))); }
 * catch (e) { if (e instanceof ProtocolError) metrics.rejected(e.reason); }
 */
export function decodeMessage(bytes: Uint8Array, limits?: Partial<ProtocolLimits>): Message {
  const lim = resolveLimits(limits);
  if (!(bytes instanceof Uint8Array)) throw new ProtocolError("bad-field", "A frame must be binary.");
  if (bytes.length > lim.maxFrameBytes) {
    throw new ProtocolError("oversized", `Frame of ${bytes.length} bytes exceeds ${lim.maxFrameBytes}.`);
  }
  const r = new ByteReader(bytes);
  const version = r.u8("version");
  const typeByte = r.u8("type");
  // Version byte 1 is left only for the frozen `hello` and for `error`, whose layout did not change, so
  // an older peer's hello is read and its refusal (`error version`) can be read by it.
  const versionOne = version === HELLO_FRAME_VERSION && (typeByte === HELLO_TYPE || typeByte === ERROR_TYPE);
  if (typeByte === HELLO_TYPE ? version !== HELLO_FRAME_VERSION : !versionOne && !speaks(version)) {
    throw new ProtocolError("unknown-version", `Protocol version ${version} is not supported.`);
  }
  const type = TYPE_BY_BYTE.get(typeByte);
  if (type === undefined) throw new ProtocolError("unknown-type", `Unknown message type ${typeByte}.`);
  const m = decodeBody(type, r, lim);
  r.end(`${type} frame`);
  return m;
}

function decodeBody(type: MessageType, r: ByteReader, lim: ProtocolLimits): Message {
  switch (type) {
    case "hello": {
      const minVersion = r.u8("minVersion");
      const maxVersion = r.u8("maxVersion");
      if (minVersion < 1 || maxVersion < minVersion) {
        throw new ProtocolError("bad-field", "hello needs 1 <= minVersion <= maxVersion.");
      }
      return { type, minVersion, maxVersion, device: r.bytes(ID_BYTES, "device") };
    }
    case "welcome": {
      const version = r.u8("version");
      if (version < 1) throw new ProtocolError("bad-field", "welcome version must be at least 1.");
      const more = readMoreFlag(r, "welcome");
      const vector = readVector(r, lim);
      return more ? { type, version, vector, more } : { type, version, vector };
    }
    case "pull": {
      const space = r.bytes(ID_BYTES, "space");
      const maxBytes = r.u32("maxBytes");
      if (maxBytes < 1) throw new ProtocolError("bad-field", "pull maxBytes must be at least 1.");
      const more = readMoreFlag(r, "pull");
      const vector = readVector(r, lim);
      return more ? { type, space, maxBytes, vector, more } : { type, space, maxBytes, vector };
    }
    case "commits": {
      const space = r.bytes(ID_BYTES, "space");
      const flags = r.u8("flags");
      if ((flags & ~(FLAG_MORE | FLAG_REPLY | FLAG_REPLACE)) !== 0)
        throw new ProtocolError("bad-field", "Unknown commits flags.");
      const replace = (flags & FLAG_REPLACE) !== 0;
      if (replace && flags !== FLAG_REPLACE)
        throw new ProtocolError("bad-field", "A replacement is an upload: neither more nor reply.");
      const count = r.u16("commit count");
      if (count > lim.maxCommitsPerBatch) {
        throw new ProtocolError("oversized", `More than ${lim.maxCommitsPerBatch} commits in one frame.`);
      }
      const commits: Uint8Array[] = [];
      for (let i = 0; i < count; i++) {
        const length = r.u32("commit length");
        if (length > lim.maxCommitBytes) {
          throw new ProtocolError("oversized", `Commit of ${length} bytes exceeds ${lim.maxCommitBytes}.`);
        }
        if (length < SEALED_COMMIT_OVERHEAD)
          throw new ProtocolError("bad-field", "Commit shorter than its header.");
        const commit = r.bytes(length, "commit");
        const { header } = decodeSealedCommit(commit, lim);
        if (!bytesEqual(header.space, space))
          throw new ProtocolError("bad-field", "A commit belongs to another space.");
        commits.push(commit);
      }
      const m: Message = {
        type,
        space,
        commits,
        more: (flags & FLAG_MORE) !== 0,
        reply: (flags & FLAG_REPLY) !== 0,
      };
      if (replace) m.replace = true;
      return m;
    }
    case "ack":
      return { type, space: r.bytes(ID_BYTES, "space"), entries: readVector(r, lim) };
    case "error": {
      const codeByte = r.u8("error code");
      const code = CODE_BY_BYTE.get(codeByte);
      if (code === undefined) throw new ProtocolError("bad-field", `Unknown error code ${codeByte}.`);
      const flags = r.u8("error flags");
      if ((flags & ~(FLAG_FATAL | FLAG_HAS_COMMIT)) !== 0)
        throw new ProtocolError("bad-field", "Unknown error flags.");
      const length = r.u16("error message length");
      if (length > MAX_ERROR_MESSAGE_BYTES) {
        throw new ProtocolError("oversized", `Error message over ${MAX_ERROR_MESSAGE_BYTES} bytes.`);
      }
      let message: string;
      try {
        message = utf8Decoder.decode(r.bytes(length, "error message"));
      } catch (e) {
        if (e instanceof ProtocolError) throw e;
        throw new ProtocolError("bad-field", "Error message is not valid UTF-8.");
      }
      const m: Message = { type, code, message, fatal: (flags & FLAG_FATAL) !== 0 };
      if (flags & FLAG_HAS_COMMIT) {
        m.device = r.bytes(ID_BYTES, "error device");
        m.seq = r.seq("error seq");
      }
      return m;
    }
    case "ping":
    case "pong":
      return { type, nonce: r.u32("nonce") };
    case "snapshot-put":
    case "snapshot": {
      const space = r.bytes(ID_BYTES, "space");
      const part = r.u16("part");
      const parts = r.u16("parts");
      if (type === "snapshot-put" && parts < 1)
        throw new ProtocolError("bad-field", "snapshot-put parts must be at least 1.");
      if (parts === 0 ? part !== 0 : part >= parts)
        throw new ProtocolError("bad-field", "A snapshot part must be below parts.");
      const vector = readVector(r, lim);
      const length = r.u32("snapshot part length");
      const bytes = r.bytes(length, "snapshot part");
      if (parts === 0 && (vector.length > 0 || length > 0)) {
        throw new ProtocolError("bad-field", "A snapshot frame with parts 0 carries no vector and no bytes.");
      }
      return { type, space, vector, part, parts, bytes };
    }
    case "snapshot-get":
      return { type, space: r.bytes(ID_BYTES, "space") };
    case "snapshot-stored":
      return { type, space: r.bytes(ID_BYTES, "space"), vector: readVector(r, lim) };
    case "signal": {
      const space = r.bytes(ID_BYTES, "space");
      const from = r.bytes(ID_BYTES, "from");
      const to = r.bytes(ID_BYTES, "to");
      const length = r.u16("signal payload length");
      if (length > MAX_SIGNAL_PAYLOAD_BYTES) {
        throw new ProtocolError("oversized", `Signal payload over ${MAX_SIGNAL_PAYLOAD_BYTES} bytes.`);
      }
      return { type, space, from, to, payload: r.bytes(length, "signal payload") };
    }
  }
}

/** The flags byte of `welcome` and `pull`: bit 0 `more`, every other bit 0. */
function readMoreFlag(r: ByteReader, what: string): boolean {
  const flags = r.u8(`${what} flags`);
  if ((flags & ~FLAG_MORE) !== 0) throw new ProtocolError("bad-field", `Unknown ${what} flags.`);
  return flags === FLAG_MORE;
}

function speaks(version: number): boolean {
  return version >= MIN_PROTOCOL_VERSION && version <= PROTOCOL_VERSION;
}

/**
 * The `error version` frame refusing a `hello` whose versions do not overlap ours, with the frame
 * version byte of `hello` (1): its sender, whatever version it speaks, can read why it was refused.
 *
 * @example
 * socket.send(encodeVersionRefusal("No common protocol version (relay speaks 2..2)."));
 */
export function encodeVersionRefusal(message: string): Uint8Array {
  const frame = encodeMessage({ type: "error", code: "version", message, fatal: true });
  frame[0] = HELLO_FRAME_VERSION;
  return frame;
}

function writeVector(w: ByteWriter, vector: VectorEntry[], lim: ProtocolLimits): void {
  if (vector.length > lim.maxVectorEntries) {
    throw new ProtocolError("oversized", `More than ${lim.maxVectorEntries} vector entries.`);
  }
  const seen = new Set<string>();
  w.u16(vector.length);
  for (const e of vector) {
    const device = checkBytes(e.device, ID_BYTES, "vector device");
    const key = toHex(device);
    if (seen.has(key)) throw new ProtocolError("bad-field", "A device appears twice in a vector.");
    seen.add(key);
    w.bytes(device);
    w.u64(checkSeq(e.seq, "vector seq"));
  }
}

function readVector(r: ByteReader, lim: ProtocolLimits): VectorEntry[] {
  const count = r.u16("vector count");
  if (count > lim.maxVectorEntries) {
    throw new ProtocolError("oversized", `More than ${lim.maxVectorEntries} vector entries.`);
  }
  const seen = new Set<string>();
  const out: VectorEntry[] = [];
  for (let i = 0; i < count; i++) {
    const device = r.bytes(ID_BYTES, "vector device");
    const key = toHex(device);
    if (seen.has(key)) throw new ProtocolError("bad-field", "A device appears twice in a vector.");
    seen.add(key);
    out.push({ device, seq: r.seq("vector seq") });
  }
  return out;
}

/** Bytes of a commits frame: version, type, space, flags and count, then a u32 length per commit. */
function commitsFrameBytes(commits: readonly Uint8Array[]): number {
  let n = 2 + ID_BYTES + 1 + 2;
  for (const c of commits) n += 4 + c.length;
  return n;
}

// A commits frame: version (1), type (1), space (16), flags (1), then the commit count (u16).
const COMMIT_COUNT_OFFSET = 2 + ID_BYTES + 1;

/**
 * The commit count a `commits` frame of this protocol version announces, read from its header alone;
 * 0 for any other frame (or one too short to say). Not a validation: `decodeMessage` still decides
 * whether the frame is well formed. The relay charges a connection's commit budget with it as soon
 * as a frame is read, before it is decoded and verified.
 *
 * @example
 * commitCountOf(encodeMessage({ type: "commits", space, commits: [a, b], more: false })); // 2
 */
export function commitCountOf(frame: Uint8Array): number {
  if (frame.length < COMMIT_COUNT_OFFSET + 2) return 0;
  if (frame[0] !== PROTOCOL_VERSION || frame[1] !== MESSAGE_TYPE_BYTES.commits) return 0;
  return (frame[COMMIT_COUNT_OFFSET]! << 8) | frame[COMMIT_COUNT_OFFSET + 1]!;
}
