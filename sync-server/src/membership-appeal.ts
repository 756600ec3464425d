import type { Handler } from "hono";
import {
  MAX_COMMITS_PER_BATCH,
  MEMBERSHIP_REFUSALS,
  ProtocolError,
  decodeBase64Url,
  decodeDeviceAuth,
  decodeSealedCommit,
  toHex,
} from "@shoal/client/protocol";
import type { AccessProbeDeps } from "./access-probe.ts";
import type { RelayLimits } from "./limits.ts";
import { provenDevice } from "./membership-gate.ts";
import type { SpaceHub } from "./space-hub.ts";
import { spaceRequest } from "./space-request.ts";
import { storeUpload } from "./store-upload.ts";

/** What `membershipAppeal` uses: the access checks' parts, and what storing an upload takes. */
export interface AppealDeps extends AccessProbeDeps {
  hub: SpaceHub;
  limits: Pick<RelayLimits, "maxFrameBytes" | "quotaBytesPerSpace">;
}

// A token (86 characters), a device proof (139), the `.` between the parts, and a little slack.
const PROOFS_BYTES = 320;

/**
 * The handler of `POST /sync/<spaceHex>/appeal` (PROTOCOL.md 1, "Appeal"): a device the relay's copy of
 * the membership log holds removed uploads its own commits the relay lacks, as it would over a
 * connection it is now refused. Two admins who removed each other offline end with the senior in place
 * (section 10, rule 3), but a relay that heard the junior first refuses the senior's device at check
 * 10, so the senior's own removal of the junior, which cancels the junior's, could never reach it.
 *
 * The body, `text/plain`, is `<token>.<device proof>[.<commit>...]`, each unpadded base64url (the
 * token and the proof as in the subprotocol items, each commit a sealed commit of the proven device),
 * at most `MAX_COMMITS_PER_BATCH` commits of at most `maxFrameBytes` together. The relay checks what
 * the invitation endpoint checks (401, 404, 403 for the token; 400, 403 Origin and 413 as the access
 * probe), then the device proof (403 `device-auth`) and that the log knows the device, as a member's
 * or as a removed one (403 `not-member` otherwise). The commits go through exactly what an upload goes
 * through (`storeUpload`: signatures, the membership log with the frame's operations looked ahead, the
 * store, the fan-out, closing the connections of devices this removes). The answer is JSON:
 * `{"admitted":true,"stored":n}` (200) when check 10 now lets the device in, else
 * `{"admitted":false,"stored":n,"refusal":"<MEMBERSHIP_REFUSALS text>"}` (403); either may name the
 * first refused commit (`"refused":{"code","message","device","seq"}`). A space without members has
 * nothing to appeal: 200 admitted, nothing stored.
 *
 * @example
 * app.post("/sync/:space/appeal", membershipAppeal({ store, hub, limits, metrics, log, memberships }));
 */
export function membershipAppeal(deps: AppealDeps): Handler {
  // Base64url is 4 characters per 3 bytes, and each commit is preceded by a `.`.
  const maxBodyBytes = PROOFS_BYTES + Math.ceil((deps.limits.maxFrameBytes * 4) / 3) + MAX_COMMITS_PER_BATCH;
  return async (c) => {
    const request = await spaceRequest(c, deps, {
      event: "appeal.refused",
      maxBytes: maxBodyBytes,
      tooLarge: "An appeal carries at most one frame of commits.",
      count: (status) => deps.metrics.appealed(status),
    });
    if (request instanceof Response) return request;
    const { space, headers, parts } = request;
    const [deviceText = "", ...commitTexts] = parts;
    const refuse = (status: 400 | 403 | 413, text: string) => {
      deps.metrics.appealed(status);
      deps.log("appeal.refused", { space, status });
      return c.text(text, status, headers);
    };
    const { state } = await deps.memberships.view(space);
    const answer = (
      status: 200 | 403,
      json: { stored: number } & Record<string, unknown>,
      device?: string,
    ) => {
      deps.metrics.appealed(status);
      deps.log("appeal.answered", { space, device, status, stored: json.stored });
      return c.json(json, status, headers);
    };
    if (!state) return answer(200, { admitted: true, stored: 0 });
    const proof = decodeDeviceAuth(deviceText);
    const device = provenDevice(space, proof, Date.now());
    if (device === undefined) return refuse(403, MEMBERSHIP_REFUSALS["device-auth"]);
    if (!state.deviceOwner.has(device) && !state.removedDevices.has(device))
      return refuse(403, MEMBERSHIP_REFUSALS["not-member"]);
    const commits = ownCommits(commitTexts, device);
    if (typeof commits === "string") return refuse(400, commits);
    if (commits.length > MAX_COMMITS_PER_BATCH || total(commits) > deps.limits.maxFrameBytes)
      return refuse(413, "An appeal carries at most one frame of commits.");
    const upload = await storeUpload(deps, space, commits);
    const refused = upload.refused && {
      code: upload.refused.code,
      message: upload.refused.message,
      device: upload.refused.device,
      seq: upload.refused.seq,
    };
    const result = { stored: upload.stored.length, ...(refused && { refused }) };
    const now = await deps.memberships.admit(space, proof, undefined, Date.now());
    if (now && "fault" in now)
      return answer(403, { admitted: false, ...result, refusal: MEMBERSHIP_REFUSALS[now.fault] }, device);
    return answer(200, { admitted: true, ...result }, device);
  };
}

/** The commits' bytes, or why the body cannot be an appeal of `device` (a 400's text). */
function ownCommits(texts: readonly string[], device: string): Uint8Array[] | string {
  const commits: Uint8Array[] = [];
  for (const text of texts) {
    let bytes: Uint8Array;
    try {
      bytes = decodeBase64Url(text);
      // Another device's commits are not this device's to appeal with (it may upload them once it is
      // let in again, as any member may).
      if (toHex(decodeSealedCommit(bytes).header.device) !== device)
        return "An appeal carries only its own device's commits.";
    } catch (e) {
      if (e instanceof ProtocolError) return "A commit of the appeal is malformed.";
      throw e;
    }
    commits.push(bytes);
  }
  return commits;
}

function total(commits: readonly Uint8Array[]): number {
  return commits.reduce((n, b) => n + b.length, 0);
}
