import type { DeviceIdentity } from "../identity/device-identity.ts";
import { identityFromSeed } from "../identity/identity-from-seed.ts";
import { signBytes } from "../identity/signing.ts";
import { redemptionProof } from "../members/membership-op.ts";
import { deviceAuthSigned, encodeDeviceAuth, encodeInvitationProof } from "../protocol/device-auth.ts";
import { fromHex } from "../protocol/hex.ts";
import { SIGNING_LABELS } from "../protocol/signing-labels.ts";
import type { SpaceRow } from "../replica/stored-rows.ts";

/**
 * The proofs a device offers a relay for a space, as subprotocol items (PROTOCOL.md 1): who it is (a
 * signature over the space id and the time, fresh for each connection), and while it joins, the
 * invitation it redeems. A relay needs them for a space that has members; others ignore them.
 *
 * @example
 * transport.connect(space, token, handlers, claim, await connectionProofs(identity, row));
 */
export async function connectionProofs(
  identity: DeviceIdentity | undefined,
  row: Pick<SpaceRow, "id" | "invitation">,
  now = Date.now(),
): Promise<string[]> {
  if (!identity) return [];
  const space = fromHex(row.id, 16);
  const signature = await signBytes(
    identity.signingKey,
    SIGNING_LABELS.deviceAuth,
    deviceAuthSigned(space, now),
  );
  const items = [encodeDeviceAuth({ signingKey: identity.signingPublic, time: now, signature })];
  if (row.invitation) items.push(await invitationProofItem(row.invitation, row.id, identity.device));
  return items;
}

/** The `shoal-invitation.` item for an invitation secret, proving it for this device. */
export async function invitationProofItem(
  secret: Uint8Array,
  space: string,
  device: string,
): Promise<string> {
  const invitation = await identityFromSeed(secret);
  const proof = await redemptionProof(invitation.signingKey, space, device);
  return encodeInvitationProof({ invitation: invitation.signingPublic, proof: fromHex(proof, 64) });
}
