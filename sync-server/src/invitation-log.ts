import type { Handler } from "hono";
import type { AccessProbeDeps } from "./access-probe.ts";
import { spaceRequest } from "./space-request.ts";

// A token (at most 86 characters), a device proof (139) and an invitation proof (128), two `.`, slack.
const MAX_BODY_BYTES = 512;

/**
 * The handler of `POST /sync/<spaceHex>/invitation` (PROTOCOL.md 1, "Invitation log"): a device that
 * joins by an invitation reads the space's membership log before it can sync, to find the space keys
 * its invitation's `invite` operation seals to the invitation (it cannot open a commit without them).
 * The body, `text/plain`, is `<token>.<device>.<invitation>`, each the unpadded base64url of its
 * subprotocol item after the prefix (the invitation part may be empty for a member's device).
 *
 * The relay checks what the upgrade checks of a known space: the token (401, 403), then, when the space
 * has members, the device proof and the membership or invitation (`admitDevice`; 403 with a
 * `MEMBERSHIP_REFUSALS` text). It answers 200 `application/json` `{"ops":[...]}`: every operation of
 * the log it holds, in arrival order, each the JSON object its membership commit carried; 404 for a
 * space it does not know; 400, 403 (Origin) and 413 as the access probe. CORS as the access probe. The
 * log holds public keys, sealed names and sealed key sets only; the token and the proofs are never
 * logged or echoed.
 *
 * @example
 * app.post("/sync/:space/invitation", invitationLog({ store, metrics, log, memberships, allowedOrigins }));
 */
export function invitationLog(deps: AccessProbeDeps): Handler {
  return async (c) => {
    const request = await spaceRequest(c, deps, {
      event: "invitation-log.refused",
      maxBytes: MAX_BODY_BYTES,
      tooLarge: "The body is a token, a device proof and an invitation proof.",
      maxParts: 2,
    });
    if (request instanceof Response) return request;
    const { space, headers, parts } = request;
    const [deviceText = "", invitationText = ""] = parts;
    const refused = await deps.memberships.refusalOf(space, deviceText, invitationText);
    if (refused !== undefined) {
      deps.log("invitation-log.refused", { space, status: 403 });
      return c.text(refused, 403, headers);
    }
    // Every text was stored only after it parsed and verified as an operation: a list of JSON values.
    const texts = await deps.store.membershipOps(space);
    return c.body(`{"ops":[${texts.join(",")}]}`, 200, { ...headers, "Content-Type": "application/json" });
  };
}
