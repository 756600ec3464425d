import type { DeviceIdentity } from "../identity/device-identity.ts";
import type { KeySet } from "../members/key-set.ts";
import type { DeviceKeys } from "../members/membership-op.ts";
import type { MembershipState } from "../members/resolve-membership.ts";
import type { Role } from "../members/membership-op.ts";
import { toHex } from "../protocol/hex.ts";
import type { SpaceRow } from "../replica/stored-rows.ts";

/** Every key of a space this device holds, by epoch (0: the key it was created with). */
export function keySetOf(row: Pick<SpaceRow, "key" | "epochKeys">): KeySet {
  const keys: KeySet = new Map([[0, row.key]]);
  for (const [e, k] of Object.entries(row.epochKeys ?? {})) keys.set(Number(e), k);
  return keys;
}

/** A device's public keys as membership operations name them. */
export function deviceKeysOf(identity: DeviceIdentity): DeviceKeys {
  return {
    device: identity.device,
    signingKey: toHex(identity.signingPublic),
    agreementKey: toHex(identity.agreementPublic),
  };
}

/** The person and role of a device in a space's membership, if it is a current member device. */
export function roleOf(
  state: MembershipState | undefined,
  device: string,
): { person: string; role: Role } | undefined {
  const person = state?.deviceOwner.get(device);
  const member = person === undefined ? undefined : state!.members.get(person);
  return member && { person: member.person, role: member.role };
}

/** A fresh random id of 16 bytes in hex (a person's id). */
export function randomHexId(): string {
  return toHex(globalThis.crypto.getRandomValues(new Uint8Array(16)));
}
