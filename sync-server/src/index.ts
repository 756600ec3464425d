/**
 * @shoal/sync-server: the Shoal relay, a store-and-forward mailbox for sealed commits.
 *
 * @example
 * import { startRelay, SqliteStore } from "@shoal/sync-server";
 * const relay = await startRelay({ store: new SqliteStore("./relay-data/relay.sqlite"), port: 8787 });
 * console.log(`sync at ${relay.url.replace("http", "ws")}/sync/<spaceHex>`);
 *
 * Or, without sockets (tests, other runtimes):
 * const app = createApp({ store: new MemoryStore() });
 * await app.request("/healthz");
 *
 * @module @shoal/sync-server
 */
export { createApp, type AppDeps } from "./app.ts";
export { startRelay, type RelayServerOptions, type RunningRelay } from "./node.ts";
export { DEFAULT_RELAY_LIMITS, resolveRelayLimits, type RelayLimits } from "./limits.ts";
export { RelayMetrics } from "./metrics.ts";
export { SpaceHub, type HubMember } from "./space-hub.ts";
export { RelaySession, type SessionDeps, type SessionSocket } from "./relay-session.ts";
export { hashToken, tokenMatches } from "./auth.ts";
export { jsonLinesLog, silentLog, type RelayLog } from "./relay-log.ts";
export { MemoryStore } from "./store/memory-store.ts";
export { SqliteStore } from "./store/sqlite-store.ts";
export { incomingCommit } from "./store/incoming-commit.ts";
export { SpaceMemberships, type MembershipView } from "./space-memberships.ts";
export { admitDevice, REMOVED_CLOSE, type Admission } from "./membership-gate.ts";
export { checkMembershipOp, MembershipCommitInvalid } from "./membership-commit-check.ts";
export {
  checkCommitSignature,
  CommitSignatureInvalid,
  type CommitSignatureFault,
} from "./commit-signature.ts";
export type {
  RelayStore,
  IncomingCommit,
  AppendOptions,
  AppendResult,
  RefusalCode,
  ReadOptions,
  ReadResult,
  SnapshotOptions,
  SnapshotVerdict,
  StoredSnapshot,
} from "./store/store.ts";
