import { ProtocolError } from "../errors.ts";

/**
 * The key epoch a sealed commit's header names when its body is a membership operation in clear
 * (PROTOCOL.md 10): 0xffffffff, never the label of a key. Such a commit travels like any other (same
 * header, chain, sequence and signature, over every transport) so the log of who may read and write
 * reaches every replica by the paths the data takes; the relay reads it to refuse removed devices and
 * spent invitations. Names inside an operation are sealed (`sealName`), never in clear.
 */
export const MEMBERSHIP_EPOCH = 0xffffffff;

/** Largest membership operation, in bytes of canonical JSON (a rotation seals a key to every device). */
export const MAX_MEMBERSHIP_OP_BYTES = 256 * 1024;

/**
 * The JSON text of the operation a membership commit's body carries, checked for size and UTF-8.
 *
 * @throws {ProtocolError} `bad-field` when the body is larger than `MAX_MEMBERSHIP_OP_BYTES` or not UTF-8.
 * @example
 * if (header.epoch === MEMBERSHIP_EPOCH) op = JSON.parse(membershipOpText(body));
 */
export function membershipOpText(body: Uint8Array): string {
  if (body.length > MAX_MEMBERSHIP_OP_BYTES)
    throw new ProtocolError(
      "bad-field",
      `A membership operation may be at most ${MAX_MEMBERSHIP_OP_BYTES} bytes.`,
    );
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(body);
  } catch {
    throw new ProtocolError("bad-field", "A membership operation is not UTF-8 text.");
  }
}
