import type { Handler } from "hono";
import { decodeBase64Url, isIdHex, RESIDENCY_REFUSAL } from "@shoal/client/protocol";
import { originAllowed, parseTokenText, tokenMatches } from "./auth.ts";
import { checkSpaceClaim, SPACE_CLAIM_REFUSALS } from "./space-claim-check.ts";
import type { RelayMetrics } from "./metrics.ts";
import type { RelayLog } from "./relay-log.ts";
import { corsHeaders } from "./cors-headers.ts";
import { readSmallText } from "./small-text-body.ts";
import type { SpaceMemberships } from "./space-memberships.ts";
import type { RelayStore } from "./store/store.ts";

/** What `accessProbe` reads: the parts of `AppDeps` the upgrade's access checks use. */
export interface AccessProbeDeps {
  store: RelayStore;
  metrics: RelayMetrics;
  log: RelayLog;
  /** The membership states the upgrade checks too (spaces with members). */
  memberships: SpaceMemberships;
  allowedOrigins?: readonly string[];
  /** The relay's region (`AppDeps.region`): a probe for a space pinned to another is refused (403). */
  region?: string;
}

// An unpadded base64url token of MAX_TOKEN_BYTES is 86 characters, a claim 150, a device proof 139 and
// an invitation proof 128, with three `.`; a little slack for a trailing newline (curl, hand-written
// requests). Anything longer is not read further.
const MAX_BODY_BYTES = 640;

/**
 * The handler of `POST /sync/<spaceHex>/access` (PROTOCOL.md 1, "Access probe"): answers whether the
 * body `<token>[.<claim>[.<device>[.<invitation>]]]` (each the unpadded base64url of its subprotocol
 * item, after the item's prefix; empty parts allowed, sent as `text/plain`) would pass the upgrade's
 * access checks, with the status the upgrade would refuse with. It exists because browsers
 * hide the HTTP status of a refused WebSocket upgrade (WHATWG "fail the WebSocket connection": close
 * 1006 only), so a page cannot otherwise tell a wrong key from a relay that is down.
 *
 * - 204: the token matches the space's registered hash, or the space is unknown and the claim would
 *   register it. A probe never registers a space: only a real connection does.
 * - 403 with the upgrade's claim texts: the space is unknown and the body carries no claim, or one
 *   that does not match the space or does not verify.
 * - 400: not a space id; 403 "Origin not allowed": the upgrade's Origin allow-list; 413: a body too
 *   long to be a token; 401: no or malformed token; 403: the token does not match.
 * - 403 with a `MEMBERSHIP_REFUSALS` text: the space has members and the device proof or the
 *   invitation proof does not let the device in (`admitDevice`).
 *
 * A `text/plain` POST without custom headers is a CORS "simple request", so no preflight is needed;
 * every answer to an allowed Origin carries `Access-Control-Allow-Origin` so the page can read it. The
 * token never reaches a log line, a metric or an answer's text.
 *
 * @example
 * app.post("/sync/:space/access", accessProbe({ store, metrics, log, memberships, allowedOrigins }));
 */
export function accessProbe(deps: AccessProbeDeps): Handler {
  return async (c) => {
    const space = c.req.param("space") ?? "";
    const origin = c.req.header("origin");
    const allowed = originAllowed(deps.allowedOrigins, origin, c.req.header("host"));
    const answer = (status: 204 | 400 | 401 | 403 | 413, text = "") => {
      deps.metrics.accessProbed(status);
      if (status !== 204)
        deps.log("access-probe.refused", { space: isIdHex(space) ? space : undefined, status });
      const headers = corsHeaders(allowed, origin);
      return status === 204 ? c.body(null, 204, headers) : c.text(text, status, headers);
    };

    if (!isIdHex(space)) return answer(400, "A space id is 32 lowercase hex characters.");
    if (!allowed) return answer(403, "Origin not allowed.");
    const body = await readSmallText(c, MAX_BODY_BYTES);
    if (body === undefined) return answer(413, "An access probe's body is one token.");
    const [tokenText = "", claimText = "", deviceText = "", invitationText = "", ...rest] = body
      .trim()
      .split(".");
    const token = rest.length === 0 ? parseTokenText(tokenText) : undefined;
    if (!token) return answer(401, "Missing or malformed access token.");
    const pinned = c.req.query("region");
    if (pinned !== undefined && pinned !== deps.region) return answer(403, RESIDENCY_REFUSAL);
    // Read only: `registerSpace` here would let anyone claim a space by probing it first.
    const stored = await deps.store.tokenHash(space);
    if (stored === undefined) {
      const checked = checkSpaceClaim(space, token, claimText === "" ? undefined : readClaim(claimText));
      if ("fault" in checked) return answer(403, SPACE_CLAIM_REFUSALS[checked.fault]);
      return answer(204); // an unknown space has no members yet
    }
    if (!tokenMatches(token, stored)) return answer(403, "Wrong access token for this space.");
    const refused = await deps.memberships.refusalOf(space, deviceText, invitationText);
    if (refused !== undefined) return answer(403, refused);
    return answer(204);
  };
}

/** A claim's bytes from base64url; unreadable text is a claim that matches nothing (empty). */
function readClaim(text: string): Uint8Array {
  try {
    return decodeBase64Url(text);
  } catch {
    return new Uint8Array(0);
  }
}
