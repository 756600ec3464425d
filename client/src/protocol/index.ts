/**
 * The Shoal wire protocol: binary messages, the sealed-commit routing header, limits and helpers.
 * Pure TypeScript with no Dexie, Automerge or Node APIs: browsers, the relay and peer-to-peer links
 * share it. Byte layouts are specified in PROTOCOL.md at the repository root.
 *
 * @example
 * import { encodeMessage, decodeMessage, offeredSubprotocols } from "@shoal/client/protocol";
 * const ws = new WebSocket(`${relay}/sync/${spaceHex}`, offeredSubprotocols(token));
 * ws.binaryType = "arraybuffer";
 * ws.onopen = () => ws.send(encodeMessage({ type: "hello", minVersion: 2, maxVersion: 2, device }));
 * ws.onmessage = (e) => handle(decodeMessage(new Uint8Array(e.data)));
 *
 * @module @shoal/client/protocol
 */
export { encodeMessage, decodeMessage, encodeVersionRefusal, commitCountOf } from "./codec.ts";
export {
  type Message,
  type MessageType,
  type HelloMessage,
  type WelcomeMessage,
  type PullMessage,
  type CommitsMessage,
  type AckMessage,
  type ErrorMessage,
  type PingMessage,
  type PongMessage,
  type SnapshotPutMessage,
  type SnapshotGetMessage,
  type SnapshotMessage,
  type SnapshotStoredMessage,
  type SignalMessage,
  type VectorEntry,
  type ErrorCodeName,
  ERROR_CODE_BYTES,
  MESSAGE_TYPE_BYTES,
} from "./messages.ts";
export { type CommitHeader, encodeCommitHeader, COMMIT_HEADER_BYTES } from "./commit-header.ts";
export {
  type DecodedSealedCommit,
  encodeSealedCommit,
  unsignedCommit,
  appendSignature,
  decodeSealedCommit,
  SEALED_COMMIT_OVERHEAD,
  SEALED_COMMIT_FIXED_BYTES,
} from "./sealed-commit.ts";
export { SIGNING_LABELS, type SigningLabel, signedMessage } from "./signing-labels.ts";
export {
  type ProtocolLimits,
  DEFAULT_LIMITS,
  resolveLimits,
  PROTOCOL_VERSION,
  MIN_PROTOCOL_VERSION,
  HELLO_FRAME_VERSION,
  MAX_REPLACEMENTS_PER_CONNECTION,
  COMMIT_FORMAT_VERSION,
  SIGNATURE_BYTES,
  PUBLIC_KEY_BYTES,
  ID_BYTES,
  HASH_BYTES,
  MAX_FRAME_BYTES,
  MAX_COMMIT_BYTES,
  MIN_COMMIT_BODY_BYTES,
  MAX_COMMITS_PER_BATCH,
  MAX_VECTOR_ENTRIES,
  MAX_ERROR_MESSAGE_BYTES,
  MAX_SEQ,
  MAX_SNAPSHOT_BYTES,
  MAX_SNAPSHOT_PARTS,
  SNAPSHOT_FRAME_OVERHEAD,
  maxSnapshotPartBytes,
  MAX_SIGNAL_PAYLOAD_BYTES,
  SIGNAL_BROADCAST,
} from "./limits.ts";
export {
  type ContentLimits,
  DEFAULT_CONTENT_LIMITS,
  MAX_CONTENT_DEPTH,
  MAX_KEYS_PER_OBJECT,
  MAX_VALUES_PER_RECORD,
  MAX_OPS_PER_CHANGE,
  MAX_CHANGES_PER_RECORD,
  MAX_RECORD_BYTES,
} from "./limits.ts";
export { toHex, fromHex, isIdHex, bytesEqual } from "./hex.ts";
export { vectorPages } from "./vector-pages.ts";
export { encodeBase64Url, decodeBase64Url } from "./base64url.ts";
export {
  SUBPROTOCOL,
  REGION_SUBPROTOCOL_PREFIX,
  RESIDENCY_REFUSAL,
  TOKEN_SUBPROTOCOL_PREFIX,
  MIN_TOKEN_BYTES,
  MAX_TOKEN_BYTES,
  offeredSubprotocols,
  parseOfferedSubprotocols,
} from "./subprotocol.ts";
export {
  SPACE_ID_LABEL,
  SPACE_SALT_BYTES,
  SPACE_CLAIM_BYTES,
  CLAIM_SUBPROTOCOL_PREFIX,
  SPACE_CLAIM_REFUSALS,
  type SpaceClaimFault,
  type SpaceClaimParts,
  spaceIdPreimage,
  spaceClaimSigned,
  encodeSpaceClaim,
  decodeSpaceClaim,
} from "./space-claim.ts";
export { CLOSE_CODES } from "./close-codes.ts";
export { ProtocolError } from "../errors.ts";
export { MEMBERSHIP_EPOCH, MAX_MEMBERSHIP_OP_BYTES, membershipOpText } from "./membership-commit.ts";
export {
  DEVICE_SUBPROTOCOL_PREFIX,
  INVITATION_SUBPROTOCOL_PREFIX,
  DEVICE_AUTH_BYTES,
  INVITATION_PROOF_BYTES,
  DEVICE_AUTH_WINDOW_MS,
  MEMBERSHIP_REFUSALS,
  type MembershipFault,
  type DeviceAuth,
  type InvitationProof,
  deviceAuthSigned,
  encodeDeviceAuth,
  decodeDeviceAuth,
  encodeInvitationProof,
  decodeInvitationProof,
} from "./device-auth.ts";
// The membership log (PROTOCOL.md 10): the relay resolves it too, to refuse removed devices and spent
// invitations with the same rules as every replica.
export {
  type MembershipOp,
  type MembershipAction,
  type DeviceKeys,
  type Role,
  canonicalJson,
  opId,
  verifyOp,
  redemptionBytes,
  isRegionName,
} from "../members/membership-op.ts";
export {
  type MembershipState,
  type Member,
  type InvitationState,
  type Rotation,
  type RefusedOpReason,
  resolveMembership,
} from "../members/resolve-membership.ts";
export { type WriteRefusal, mayWrite } from "../members/may-write.ts";
export { countedCompactions } from "../members/counted-in-own-past.ts";
