import * as A from "@automerge/automerge";
import { uleb } from "./change-ops.ts";

/**
 * The actor and first operation counter of one binary Automerge change, read from its header (the
 * layout `changeOps` reads, PROTOCOL.md 3.2): enough to tell which change wrote an operation
 * `counter@actor`. `A.decodeChange` gives the same but materializes every operation, which for a long
 * text's change takes seconds; this reads a few dozen bytes. Falls back to `A.decodeChange` for bytes
 * this reader does not understand (a compressed chunk).
 *
 * @example
 * const { actor, startOp } = changeAuthor(A.getLastLocalChange(doc)!);
 */
export function changeAuthor(bytes: Uint8Array): { actor: string; startOp: number } {
  try {
    const read = header(bytes);
    if (read) return read;
  } catch {
    // A truncated or odd header: the full decoder says what it is, or throws.
  }
  const d = A.decodeChange(bytes as A.Change);
  return { actor: d.actor, startOp: d.startOp };
}

const MAGIC = [0x85, 0x6f, 0x4a, 0x83];
const CHUNK_CHANGE = 1;

function header(b: Uint8Array): { actor: string; startOp: number } | null {
  for (let i = 0; i < 4; i++) if (b[i] !== MAGIC[i]) return null;
  if (b[8] !== CHUNK_CHANGE) return null; // after the 4-byte checksum
  const r = { pos: 9 };
  uleb(b, r); // chunk length
  const deps = uleb(b, r);
  r.pos += deps * 32;
  const actorLength = uleb(b, r);
  if (r.pos + actorLength > b.length) return null;
  let actor = "";
  for (let i = 0; i < actorLength; i++) actor += b[r.pos + i]!.toString(16).padStart(2, "0");
  r.pos += actorLength;
  uleb(b, r); // seq
  const startOp = uleb(b, r);
  return { actor, startOp };
}
