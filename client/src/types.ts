/** Branded string ids: a `RecordId` cannot be passed where a `SpaceId` is expected by mistake. */
declare const brand: unique symbol;
type Brand<T, B extends string> = T & { readonly [brand]: B };

/** A record's id: a UUIDv7 string, sortable by creation time and unique across devices. */
export type RecordId = Brand<string, "RecordId">;
/** A space's id: 16 random bytes as 32 lowercase hex characters. */
export type SpaceId = Brand<string, "SpaceId">;
/** A device's id: 16 random bytes as 32 lowercase hex characters; opaque to the relay. */
export type DeviceId = Brand<string, "DeviceId">;
/** A commit's id: `<space>.<device>.<seq>`, unique everywhere. */
export type CommitId = Brand<string, "CommitId">;

/** Per space, per device: the highest contiguous sequence number this replica holds. */
export type VersionVector = Record<string, Record<string, number>>;
