import { sha256 } from "../crypto/sha256.ts";
import type { DeviceIdentity } from "../identity/device-identity.ts";
import { deviceIdOf } from "../identity/device-identity.ts";
import { SIGNING_LABELS, signBytes, verifyBytes } from "../identity/signing.ts";
import { fromHex, toHex } from "../protocol/hex.ts";

/** What a member may do in a space. `reader`s' commits are refused everywhere. */
export type Role = "admin" | "writer" | "reader";

/** A device's public keys as the membership log names them (hex). */
export interface DeviceKeys {
  /** Device id: the first 16 bytes of SHA-256 of `signingKey` (32 hex characters). */
  device: string;
  /** Raw Ed25519 public key, 64 hex characters. */
  signingKey: string;
  /** Raw X25519 public key, 64 hex characters. */
  agreementKey: string;
}

/** The body of a membership operation: what it does. */
export type MembershipAction =
  /** The first operation of a space: its creator, an admin, with the creating device. */
  | {
      kind: "create";
      person: string;
      name: string;
      device: DeviceKeys;
      /**
       * The region the space is pinned to (`isRegionName`): its commits go only to relays of that
       * region. Only the `create` carries it, so it is fixed for the space's life.
       */
      residency?: string;
    }
  /** A new person with a role and a first device. */
  | { kind: "add-person"; person: string; name: string; role: Role; device: DeviceKeys }
  /** Another device of an existing person (by an admin, or by the person from a device they have). */
  | { kind: "add-device"; person: string; device: DeviceKeys }
  /**
   * A new role for a person. Demoting to `reader` records in `cut`, per device of the person, the last
   * of its commits the author had accepted: those stay, later data commits of the device are refused.
   */
  | { kind: "set-role"; person: string; role: Role; cut?: Record<string, number> }
  /**
   * A person (with all their devices) or one device leaves the space. `cut` records, per removed
   * device, the last of its commits the remover had accepted: every replica drops its commits beyond.
   */
  | { kind: "remove"; person: string; device?: string; cut: Record<string, number> }
  /**
   * An invitation: whoever holds the secret whose Ed25519 public key is `invitation` (64 hex) may join
   * as a new person with `role`, up to `uses` times, while the redemption's time is at most `expires`
   * (ms since 1970).
   */
  | {
      kind: "invite";
      invitation: string;
      role: Role;
      expires: number;
      uses: number;
      /** The invitation's X25519 public key (64 hex), which `keys` is sealed to. */
      agreementKey?: string;
      /** The space's key set sealed to `agreementKey` (hex, `sealKeySet`): what the invitee reads with. */
      keys?: string;
      /**
       * A device link: the redeemer becomes another device of this person (with the person's role)
       * instead of a new person. Written by an admin or by the person, from a device they have.
       */
      person?: string;
    }
  /**
   * A new key epoch (after a removal): a fresh space key labelled `epoch` (1 to 2^32 - 2, random so
   * concurrent rotations never share a label), and the key set with it sealed to each current device's
   * and each open invitation's X25519 key (`keys`: device id or invitation key -> sealed hex). Commits
   * sealed afterwards name this epoch; the removed devices never see its key.
   */
  | { kind: "rotate"; epoch: number; keys: Record<string, string> }
  /**
   * The key set of an existing epoch sealed to more devices or invitations (`keys`, as in `rotate`): for
   * a member a concurrent rotation missed (its redemption or addition was not in the rotation's past).
   * Written by a member device that holds the epoch's key; entries never replace the rotation's own.
   */
  | { kind: "share"; epoch: number; keys: Record<string, string> }
  /** An invitation withdrawn: later and concurrent redemptions of it do not count. */
  | { kind: "revoke-invite"; invitation: string }
  /**
   * A new device joins as a new person by an invitation, without its admin online: written by that
   * device (`device` must be the op's author), with `proof`, the invitation key's signature (128 hex)
   * over `"shoal/v2/redeem"` 0x00 then the space id and the device id (hex text, 64 characters).
   */
  | { kind: "redeem"; invitation: string; person: string; name: string; device: DeviceKeys; proof: string }
  /**
   * A record erased for good (an admin, GDPR Art. 17): `record` is the record id sealed like a name
   * (`sealName`), so the relay, which reads this log, never learns which record. Every device that
   * applies it purges the record and from then on drops any change to it (PROTOCOL.md 12).
   */
  | { kind: "erase"; record: string }
  /** A device's signed receipt that it applied the erase whose op id is `erase` (any member device). */
  | { kind: "erase-receipt"; erase: string }
  /**
   * Its author asks the other member devices for hold receipts of each device's commits in this space
   * up to its seq in `vector` (`durable: { devices }` for its own, `db.compact` for every device it
   * compacts, PROTOCOL.md 10 "Hold receipts"). Any member device. One operation however many devices
   * it names; the older form `{ seq, device? }` (one device, absent: the author) is still read.
   */
  | { kind: "hold-request"; vector: Record<string, number> }
  | { kind: "hold-request"; seq: number; device?: string }
  /**
   * A signed receipt: its author stores each device's commits of this space from 1 up to its seq in
   * `vector` (in its IndexedDB, applied or kept). Any member device, in answer to `hold-request`s: one
   * operation for every device it can answer for at once. The older form `{ device, seq }` is still read.
   */
  | { kind: "hold"; vector: Record<string, number> }
  | { kind: "hold"; device: string; seq: number }
  /**
   * The relay may drop the data commits up to `vector` (device id -> seq, PROTOCOL.md 12, "Relay
   * compaction"): an admin only, once the relay holds the snapshot whose sealed bytes hash (SHA-256,
   * 64 hex) to `snapshot` and which covers `vector`; fresh devices bootstrap from it, and every device
   * drops its sealed copies of those commits.
   */
  | { kind: "compact"; vector: Record<string, number>; snapshot: string };

/** One signed operation of a space's membership log. */
export interface MembershipOp {
  /** Format version: 1. */
  v: 1;
  /** The space (32 hex). */
  space: string;
  /** The authoring device (32 hex): the first 16 bytes of SHA-256 of `authorKey`. */
  author: string;
  /** The author's Ed25519 public key (64 hex), whose signature `sig` is. */
  authorKey: string;
  /**
   * The ids of the operations the author held as the log's heads when it wrote this one (sorted, empty
   * only for `create`): the op's causal past, which decides what its author was allowed to do.
   */
  parents: string[];
  /** The author's clock (ms), for people only: never used to order or decide. */
  at: number;
  action: MembershipAction;
  /** Ed25519 signature (128 hex) over `"shoal/v2/membership"` 0x00 and the op's canonical bytes. */
  sig: string;
}

/**
 * The canonical JSON text of a value: object keys sorted, no spaces, integers only as numbers. Two
 * implementations that agree on the op agree on its bytes, hence on its id and its signature.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value === "boolean") return JSON.stringify(value);
  if (typeof value === "number") {
    if (!Number.isSafeInteger(value))
      throw new TypeError("Only safe integers appear in membership operations.");
    return String(value);
  }
  if (typeof value === "string") return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
  }
  throw new TypeError(`A ${typeof value} cannot appear in a membership operation.`);
}

/** The bytes an op's signature covers: its canonical JSON without `sig`. */
export function unsignedOpBytes(op: Omit<MembershipOp, "sig"> | MembershipOp): Uint8Array {
  const { sig: _sig, ...rest } = op as MembershipOp;
  return new TextEncoder().encode(canonicalJson(rest));
}

/**
 * An op's id: SHA-256 (hex) of its canonical JSON, signature included, so the id names exactly one
 * signed operation.
 *
 * @example
 * const id = await opId(op);
 */
export async function opId(op: MembershipOp): Promise<string> {
  return toHex(await sha256(new TextEncoder().encode(canonicalJson(op))));
}

/**
 * Signs a membership operation as `identity`'s device.
 *
 * @example
 * const op = await signOp(identity, { space, parents: heads, at: Date.now(), action: { kind: "set-role", person, role: "reader" } });
 */
export async function signOp(
  identity: DeviceIdentity,
  body: { space: string; parents: string[]; at: number; action: MembershipAction },
): Promise<MembershipOp> {
  const unsigned: Omit<MembershipOp, "sig"> = {
    v: 1,
    space: body.space,
    author: identity.device,
    authorKey: toHex(identity.signingPublic),
    parents: [...body.parents].sort(),
    at: body.at,
    action: body.action,
  };
  const sig = await signBytes(identity.signingKey, SIGNING_LABELS.membership, unsignedOpBytes(unsigned));
  return { ...unsigned, sig: toHex(sig) };
}

/**
 * Whether an op is well formed and signed by the device it names (its id bound to its key). Never throws.
 *
 * @example
 * const good = (await Promise.all(ops.map(verifyOp))).every(Boolean);
 */
export async function verifyOp(op: MembershipOp): Promise<boolean> {
  try {
    if (op.v !== 1 || !HEX32.test(op.space) || !HEX32.test(op.author) || !HEX64.test(op.authorKey))
      return false;
    if (!Array.isArray(op.parents) || !op.parents.every((p) => HEX64.test(p))) return false;
    if (!HEX128.test(op.sig) || (await deviceIdOf(fromHex(op.authorKey, 32))) !== op.author) return false;
    if (!Number.isSafeInteger(op.at) || !wellFormed(op.action)) return false;
    const a = op.action;
    if (a.kind === "redeem") {
      if (a.device.device !== op.author || a.device.signingKey !== op.authorKey) return false;
      if (!HEX64.test(a.invitation) || !HEX128.test(a.proof)) return false;
      const proved = await verifyBytes(
        fromHex(a.invitation, 32),
        SIGNING_LABELS.redeem,
        redemptionBytes(op.space, op.author),
        fromHex(a.proof, 64),
      );
      if (!proved) return false;
    }
    if (a.kind === "invite" && (a.agreementKey !== undefined || a.keys !== undefined)) {
      if (!HEX64.test(a.agreementKey ?? "") || !HEX_ANY.test(a.keys ?? "")) return false;
    }
    if (a.kind === "rotate" || a.kind === "share") {
      if (!Number.isSafeInteger(a.epoch) || a.epoch < 1 || a.epoch >= 0xffffffff) return false;
      if (typeof a.keys !== "object" || a.keys === null) return false;
      for (const [k, v] of Object.entries(a.keys))
        if (!(HEX32.test(k) || HEX64.test(k)) || !HEX_ANY.test(v)) return false;
    }
    // A device an op adds must be named by its own key, as commits name theirs.
    if ("device" in a && typeof a.device === "object" && a.device !== null) {
      const d = a.device;
      if (!HEX64.test(d.signingKey) || !HEX64.test(d.agreementKey)) return false;
      if ((await deviceIdOf(fromHex(d.signingKey, 32))) !== d.device) return false;
    }
    return await verifyBytes(
      fromHex(op.authorKey, 32),
      SIGNING_LABELS.membership,
      unsignedOpBytes(op),
      fromHex(op.sig, 64),
    );
  } catch {
    return false;
  }
}

const ROLES = new Set(["admin", "writer", "reader"]);
/**
 * A compaction's or a hold operation's vector names at most this many devices (a snapshot's vector
 * travels in one frame).
 */
export const MAX_VECTOR_DEVICES = 4096;
const str = (v: unknown, max = 4096) => typeof v === "string" && v.length <= max;
const cutOk = (v: unknown) =>
  typeof v === "object" &&
  v !== null &&
  !Array.isArray(v) &&
  Object.entries(v).every(([k, n]) => HEX32.test(k) && Number.isSafeInteger(n) && (n as number) >= 0);
/** A hold vector: 1 to `MAX_VECTOR_DEVICES` devices, each with a seq of at least 1. */
const holdVectorOk = (v: unknown) =>
  cutOk(v) &&
  Object.keys(v as object).length > 0 &&
  Object.keys(v as object).length <= MAX_VECTOR_DEVICES &&
  Object.values(v as object).every((n) => (n as number) >= 1);
const deviceOk = (d: unknown) =>
  typeof d === "object" &&
  d !== null &&
  HEX32.test((d as DeviceKeys).device) &&
  HEX64.test((d as DeviceKeys).signingKey) &&
  HEX64.test((d as DeviceKeys).agreementKey);

/** Whether an action has its kind's fields with the right types (a hostile op may have anything). */
function wellFormed(a: MembershipAction): boolean {
  if (typeof a !== "object" || a === null) return false;
  switch (a.kind) {
    case "create":
      return (
        str(a.person, 64) &&
        str(a.name) &&
        deviceOk(a.device) &&
        (a.residency === undefined || isRegionName(a.residency))
      );
    case "add-person":
      return str(a.person, 64) && str(a.name) && ROLES.has(a.role) && deviceOk(a.device);
    case "add-device":
      return str(a.person, 64) && deviceOk(a.device);
    case "set-role":
      return str(a.person, 64) && ROLES.has(a.role) && (a.cut === undefined || cutOk(a.cut));
    case "remove":
      return str(a.person, 64) && (a.device === undefined || HEX32.test(a.device)) && cutOk(a.cut);
    case "invite":
      return (
        (a.person === undefined || str(a.person, 64)) &&
        HEX64.test(a.invitation) &&
        ROLES.has(a.role) &&
        Number.isSafeInteger(a.expires) &&
        Number.isSafeInteger(a.uses) &&
        a.uses >= 1
      );
    case "revoke-invite":
      return HEX64.test(a.invitation);
    case "redeem":
      return str(a.person, 64) && str(a.name) && deviceOk(a.device);
    case "rotate":
    case "share":
      return true; // checked by the caller
    case "erase":
      return str(a.record);
    case "erase-receipt":
      return HEX64.test(a.erase);
    case "hold-request":
      if ("vector" in a) return holdVectorOk(a.vector);
      return Number.isSafeInteger(a.seq) && a.seq >= 1 && (a.device === undefined || HEX32.test(a.device));
    case "hold":
      if ("vector" in a) return holdVectorOk(a.vector);
      return HEX32.test(a.device) && Number.isSafeInteger(a.seq) && a.seq >= 1;
    case "compact":
      return (
        cutOk(a.vector) &&
        Object.keys(a.vector).length > 0 &&
        Object.keys(a.vector).length <= MAX_VECTOR_DEVICES &&
        HEX64.test(a.snapshot)
      );
    default:
      return false;
  }
}

/**
 * Whether `name` can name a region (a space's residency, a relay's `--region`): 1 to 32 lowercase
 * letters, digits and `-`, starting with a letter, e.g. `eu`, `us-east`.
 *
 * @example
 * isRegionName("eu"); // true
 */
export function isRegionName(name: unknown): name is string {
  return typeof name === "string" && /^[a-z][a-z0-9-]{0,31}$/.test(name);
}

/** What an invitation's key signs to redeem it for one device of one space. */
export function redemptionBytes(space: string, device: string): Uint8Array {
  return new TextEncoder().encode(space + device);
}

/**
 * The `proof` of a redemption: the invitation key's signature binding it to this space and device, so
 * a redemption seen in the log cannot be replayed for another device.
 *
 * @example
 * const proof = await redemptionProof(invitationKey, space, identity.device);
 */
export async function redemptionProof(
  invitationKey: CryptoKey,
  space: string,
  device: string,
): Promise<string> {
  return toHex(await signBytes(invitationKey, SIGNING_LABELS.redeem, redemptionBytes(space, device)));
}

const HEX32 = /^[0-9a-f]{32}$/;
const HEX64 = /^[0-9a-f]{64}$/;
const HEX128 = /^[0-9a-f]{128}$/;
const HEX_ANY = /^(?:[0-9a-f]{2}){1,8192}$/;
