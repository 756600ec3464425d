import { AccessDenied, InvalidInvitation, NotPermitted } from "@shoal/client";

/**
 * What went wrong, in words for the person at the desk rather than for a developer: the typed errors of
 * membership (NotPermitted, AccessDenied, InvalidInvitation) each say what happened and what to do.
 * Anything else keeps its own message.
 */
export function explainError(error: unknown, clinicName: string): string {
  if (error instanceof NotPermitted) {
    switch (error.reason) {
      case "reader":
        return `You can read ${clinicName} but not change it: your role there is reader. Ask an admin if you need to make changes.`;
      case "removed":
        return `You no longer have access to ${clinicName}: this device was removed from its staff.`;
      case "not-a-member":
        return `This device is not on the staff of ${clinicName} yet.`;
      case "not-admin":
        return `Only an admin of ${clinicName} can manage its staff.`;
      case "not-creator":
        return `Only the device that created ${clinicName} can start its staff list. Ask whoever set it up to invite you.`;
    }
  }
  if (error instanceof AccessDenied) {
    switch (error.reason) {
      case "invitation-used":
        return "This invitation link has already been used. Each link admits one device: ask for a new one.";
      case "invitation-expired":
        return "This invitation link has expired. Ask the person who invited you for a new one.";
      case "invitation-revoked":
        return "This invitation link was withdrawn by an admin. Ask for a new one if you still need access.";
      case "invitation-unknown":
        return "The clinic has no record of this invitation link yet. If it was just made, try again in a moment once the inviting device is online; otherwise ask for a new link.";
      case "removed":
        return `You no longer have access to ${clinicName}.`;
      default:
        return `The relay refused access to ${clinicName}. Ask a colleague in the clinic for a new invitation link.`;
    }
  }
  if (error instanceof InvalidInvitation)
    return `This invitation link is not valid (${error.message}) Check that it was copied whole, or ask for a new one.`;
  return error instanceof Error ? error.message : String(error);
}

/** The error's stable code and reason, for `data-` attributes that tests and styles can read. */
export function errorTags(error: unknown): { "data-code"?: string; "data-reason"?: string } {
  const e = error as { code?: unknown; reason?: unknown } | null;
  return {
    ...(typeof e?.code === "string" && { "data-code": e.code }),
    ...(typeof e?.reason === "string" && { "data-reason": e.reason }),
  };
}
