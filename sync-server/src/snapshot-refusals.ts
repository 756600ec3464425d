import type { ErrorCodeName } from "@shoal/client/protocol";

/** The error code a refused `snapshot-put` gets, by the store's verdict. */
export const SNAPSHOT_REFUSAL_CODES = {
  stale: "stale-snapshot",
  gap: "gap",
  quota: "quota",
  "store-full": "quota",
} as const satisfies Record<string, ErrorCodeName>;

/** What a refused `snapshot-put` is told, by the store's verdict. */
export const SNAPSHOT_REFUSAL_MESSAGES = {
  stale: "The stored snapshot is newer for some device; it was kept.",
  gap: "The snapshot's vector names commits the relay does not hold; upload them first.",
  quota: "The space has reached its storage quota; the snapshot was not stored.",
  "store-full": "The relay's storage is full; the snapshot was not stored.",
} as const;
