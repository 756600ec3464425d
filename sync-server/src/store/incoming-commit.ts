import { createHash } from "node:crypto";
import { decodeSealedCommit, toHex, type ProtocolLimits } from "@shoal/client/protocol";
import type { IncomingCommit } from "./store.ts";

/**
 * Decodes a sealed commit's header and hashes the whole commit, giving what `RelayStore.append` needs.
 * Throws `ProtocolError` for a malformed commit.
 *
 * @example
 * await store.append(spaceHex, message.commits.map((c) => incomingCommit(c)), { quotaBytes });
 */
export function incomingCommit(bytes: Uint8Array, limits?: Partial<ProtocolLimits>): IncomingCommit {
  const { header } = decodeSealedCommit(bytes, limits);
  return {
    device: toHex(header.device),
    seq: header.seq,
    prevHash: header.prevHash,
    hash: new Uint8Array(createHash("sha256").update(bytes).digest()),
    bytes,
  };
}
