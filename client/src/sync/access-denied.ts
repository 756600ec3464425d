import { AccessDenied, type AccessDeniedReason } from "../errors.ts";
import { MEMBERSHIP_REFUSALS, type MembershipFault } from "../protocol/device-auth.ts";
import { SPACE_CLAIM_REFUSALS } from "../protocol/space-claim.ts";

/** What a person reads when the space's membership log refuses this device at the relay. */
const MEMBERSHIP_MESSAGES: Readonly<Record<MembershipFault, string>> = {
  "device-auth": "The relay could not confirm this device (its clock may be far off, or it has no keys).",
  removed: "You no longer have access to this space: this device was removed from it.",
  "not-member": "This device is not a member of this space. Ask an admin for an invitation.",
  "invitation-unknown": "The relay does not know this invitation. Ask for a new link.",
  "invitation-used": "This invitation was already used. Ask the person who sent it for a new one.",
  "invitation-expired": "This invitation has expired. Ask the person who sent it for a new one.",
  "invitation-revoked": "This invitation was withdrawn. Ask an admin of the space for a new one.",
};

/**
 * The `AccessDenied` for a refused connection: `claim` when the relay's text is one of its claim
 * refusals (PROTOCOL.md 1, "Space claims"), `token` otherwise, with a message that says what to do.
 */
export function accessDenied(reason: string, offeredClaim: boolean): AccessDenied {
  for (const [fault, text] of Object.entries(MEMBERSHIP_REFUSALS) as [MembershipFault, string][]) {
    if (!reason.includes(text)) continue;
    const why: AccessDeniedReason = fault === "device-auth" ? "not-member" : fault;
    return new AccessDenied(MEMBERSHIP_MESSAGES[fault], why);
  }
  if (!Object.values(SPACE_CLAIM_REFUSALS).some((text) => reason.includes(text))) return new AccessDenied();
  return new AccessDenied(
    offeredClaim
      ? "The relay does not know this space and refused its claim; the claim this device holds does not " +
          "belong to the space or its key. Join again with a current invitation link."
      : "The relay does not know this space, and this device holds no claim by its creator to register it " +
          "(the space was made before claims, or joined with an old link). Join again with an invitation " +
          "link from the space's creator, or let a member who has one connect first.",
    "claim",
  );
}
