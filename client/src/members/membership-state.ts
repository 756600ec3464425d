import type { DeviceKeys, Role } from "./membership-op.ts";

/** A current member of a space. */
export interface Member {
  person: string;
  name: string;
  role: Role;
  /** The person's current devices. */
  devices: DeviceKeys[];
  /** Seniority: the position, in the log's order, of the op that added this person (the creator: 0). */
  since: number;
}

/** Why an operation of the log does not count. */
export type RefusedOpReason =
  | "not-the-creator"
  | "unauthorized"
  | "malformed"
  | "removed-concurrently"
  | "concurrent-with-removal"
  | "invitation-unknown"
  | "invitation-expired"
  | "invitation-revoked"
  | "invitation-used"
  | "already-added";

/** An invitation as the log says it is now. */
export interface InvitationState {
  /** The id of the `invite` operation. */
  op: string;
  role: Role;
  expires: number;
  uses: number;
  revoked: boolean;
  /** The devices whose redemptions of it count, in the log's order. */
  redeemedBy: string[];
  /** The invitation's X25519 key and the key set sealed to it (absent in invitations without keys). */
  agreementKey?: string;
  keys?: string;
  /** A device link's person: its redemption adds a device to this person. */
  person?: string;
}

/** A counted key rotation. */
export interface Rotation {
  /** The id of the `rotate` operation. */
  op: string;
  /** The new epoch's label. */
  epoch: number;
  /** Device id or invitation key -> the key set sealed to it (hex). */
  keys: Record<string, string>;
}

/** What a space's membership log says, the same on every replica that holds the same operations. */
export interface MembershipState {
  /** The space's current key epoch: the label of the last counted rotation in the log's order, or 0. */
  epoch: number;
  /** Counted rotations, in the log's order. */
  rotations: Rotation[];
  /**
   * Rotations that were authorized where they were written but were cancelled since (rules 3 and 4:
   * their author removed concurrently), in the log's order, with the shares of their epochs. Their
   * epochs are never sealed under again, but commits written while a device counted one (before the
   * removal reached it) are sealed under it: their keys stay readable and shareable, so those
   * commits open everywhere. Epochs of counted rotations are never among them.
   */
  cancelledRotations: Rotation[];
  /**
   * Counted rotations' epochs -> current devices that likely lack the epoch's key, for any member who
   * holds it to share (`shareMissingKeys`): the rotation did not seal it to them (nor to the
   * invitation they redeemed), and they were not added after it (a device added after a rotation got
   * a key set holding its epoch from whoever added it). A rotation written while its author held a
   * member removed whose removal was cancelled since, or concurrently with a redemption, leaves such
   * a device; without a share it could never open what was sealed under that epoch.
   */
  keyNeeds: Map<number, string[]>;
  /** Invitations by their public key (hex). */
  invitations: Map<string, InvitationState>;
  /**
   * Devices of people demoted to reader -> the last of their commits that counts (the `cut` of the
   * demotion). A current reader's later data commits are refused.
   */
  readerCut: Map<string, number>;
  /** Every device ever added -> its person, removed ones included (for history and audit). */
  everOwner: Map<string, string>;
  /** Every person ever added -> the (sealed) name the op that added them gave, removed ones included. */
  names: Map<string, string>;
  /** Current members by person id. */
  members: Map<string, Member>;
  /** Current device id -> its person. */
  deviceOwner: Map<string, string>;
  /**
   * Removed devices -> the last of their commits that counts (the highest `cut` any valid removal of
   * the device recorded; 0 when none did). Their commits beyond it are dropped, however they arrive.
   */
  removedDevices: Map<string, number>;
  /** Ops that count, in the log's order. */
  order: string[];
  /** Ops that do not count, with why. */
  refused: Map<string, RefusedOpReason>;
  /** Ops held whose causal past is not all here yet: they wait. */
  waiting: string[];
  /** The ids of the held ops no other held op names as parent: what a new op's `parents` are. */
  heads: string[];
  /**
   * The region the space is pinned to (`createSpace({ residency })`): set by the counted `create`
   * only, so no later operation, by anyone, changes it. Absent: not pinned.
   */
  residency?: string;
}
