import type { DeviceId, SpaceId } from "../types.ts";
import type { Creation } from "./creation.ts";

/** A row of `_docs`: one record's Automerge state. */
export interface DocRow {
  id: string;
  collection: string;
  space: SpaceId;
  /** The saved document; empty while the record holds only its creation (`create`). */
  bin: Uint8Array;
  /** Automerge heads, or `CREATION_HEADS` while only the creation is held. */
  heads: string[];
  /** The creation, kept until the document is first built (then `bin` holds it). */
  create?: Creation;
  /** 1 when the record carries a delete (a tombstone); its materialized row is gone. */
  deleted: 0 | 1;
}

/** A row of `_vectors`: the highest contiguous sequence held for (space, device). */
export interface VectorRow {
  space: SpaceId;
  device: DeviceId;
  seq: number;
}

/** A row of `_spaces`. */
export interface SpaceRow {
  id: SpaceId;
  name: string;
  key: Uint8Array;
  createdAt: number;
  /** The database's own space, created with it and never shared by default. */
  private: boolean;
  /**
   * The space's claim (112 bytes, PROTOCOL.md 1, "Space claims"): signed by its creator at creation,
   * received by members in the invitation link, offered on every relay connection so a relay that does
   * not know the space can register it. Absent for spaces made before claims, or without WebCrypto.
   */
  claim?: Uint8Array;
  /**
   * Keys of later epochs (after removals rotated the space key), by epoch label; epoch 0's is `key`.
   * Absent until the space's first rotation reaches this device.
   */
  epochKeys?: Record<number, Uint8Array>;
  /** The epoch this device seals new commits under: the newest whose key it holds (absent: 0). */
  epoch?: number;
  /**
   * The secret of the invitation this device joined by, until its redemption counts: proves to the
   * relay that it may come in before it is a member.
   */
  invitation?: Uint8Array;
  /** People's display names from the membership log, opened (person id -> name). */
  names?: Record<string, string>;
  /**
   * That secret once the redemption counts (no longer a proof for the relay): a rotation an admin made
   * before it learned of the redemption is sealed to the invitation, not to this device, and this is
   * the only key that opens it.
   */
  redeemed?: Uint8Array;
  /** Set when the membership log does not let this device write here (why), so writes fail at once. */
  readOnly?: "reader" | "removed" | "not-a-member";
  /** Relay compaction (PROTOCOL.md 12): what this device published and applied. */
  compaction?: SpaceCompaction;
}

/** A space's compaction state on this device (`SpaceRow.compaction`). */
export interface SpaceCompaction {
  /** The last compacted snapshot this device published and the relay stored: its vector and hash. */
  published?: { vector: Record<string, number>; snapshot: string };
  /** Per device, the highest seq a counted `compact` operation applied here covers. */
  floor?: Record<string, number>;
  /** The counted `compact` operations applied here (their op ids). */
  applied?: string[];
}

/** A row of `_members`: one verified membership operation of a space. */
export interface MemberRow {
  space: SpaceId;
  /** The op id (SHA-256 hex of its canonical JSON). */
  id: string;
  /** The op's canonical JSON. */
  op: string;
}

/** A row of `_quarantine`: an authentic remote commit that was refused and is never applied. */
export interface QuarantineRow {
  /** The commit id, `<space>.<device>.<seq>`. */
  id: string;
  space: SpaceId;
  device: DeviceId;
  seq: number;
  /** Stable reason (`CommitQuarantined.reason`) and the message for people. */
  reason: string;
  message: string;
  /** When this replica quarantined it (ms since the epoch, this device's clock). */
  at: number;
  /** Where it came from, as the caller of `applyCommits` said: `relay`, `peer`, `bundle`, ... */
  from: string;
  /** Records it touched. */
  records: string[];
  /** Records it created: later commits editing them can never apply. */
  creations: string[];
  /**
   * First 4 bytes (8 hex digits) of each of its Automerge changes' hash, as the change's chunk header
   * states them: a later change whose missing dependency starts so depends on it.
   */
  checksums: string[];
}

/**
 * The `_meta` key under which a left space keeps how many commits of its own this device had made there.
 * Nothing else of the space survives leaving; this survives so that, if the device joins the space again,
 * it does not number new commits from 1 (the relay and every other device still hold its old ones under
 * those numbers: reusing one would be a forged twin of its own commit).
 */
export function leftSpaceKey(space: string): string {
  return `left:${space}`;
}

/** The `_meta` row of a space this device left with commits of its own there. */
export interface LeftSpaceRow {
  key: string;
  value: { ownSeq: number; at: number };
}
