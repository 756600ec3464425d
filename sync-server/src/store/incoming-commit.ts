import { createHash } from "node:crypto";
import { decodeSealedCommit, MEMBERSHIP_EPOCH, toHex, type ProtocolLimits } from "@shoal/client/protocol";
import { checkCommitSignature } from "../commit-signature.ts";
import { membershipBodyText } from "../membership-commit-check.ts";
import type { IncomingCommit } from "./store.ts";

/**
 * Decodes a sealed commit, checks that it is its device's, and hashes the whole commit, giving what
 * `RelayStore.append` needs. Throws `ProtocolError` for a malformed commit and `CommitSignatureInvalid`
 * for one whose device id is not its author key's or whose signature does not verify: the relay stores
 * nothing it has not verified, so a store only ever holds commits signed by their device. A membership
 * commit (epoch `MEMBERSHIP_EPOCH`) gets its operation's text in `membershipOp` (`MembershipCommitInvalid`
 * when the body is not UTF-8 or too large); what the text says is checked by `checkMembershipOp`.
 *
 * @example
 * await store.append(spaceHex, message.commits.map((c) => incomingCommit(c)), { quotaBytes });
 */
export function incomingCommit(bytes: Uint8Array, limits?: Partial<ProtocolLimits>): IncomingCommit {
  const decoded = decodeSealedCommit(bytes, limits);
  checkCommitSignature(decoded);
  const { header } = decoded;
  const membershipOp =
    header.epoch === MEMBERSHIP_EPOCH ? membershipBodyText(header, decoded.body) : undefined;
  return {
    device: toHex(header.device),
    seq: header.seq,
    prevHash: header.prevHash,
    hash: new Uint8Array(createHash("sha256").update(bytes).digest()),
    bytes,
    ...(membershipOp !== undefined && { membershipOp }),
  };
}
