import type { Handler } from "hono";
import {
  MAX_COMMITS_PER_BATCH,
  MEMBERSHIP_REFUSALS,
  ProtocolError,
  decodeBase64Url,
  decodeDeviceAuth,
  decodeSealedCommit,
  toHex,
  type DeviceAuth,
  type ErrorCodeName,
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
  /** The relay's region (`AppDeps.region`). */
  region?: string;
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
    const outcome = await decideAppeal(deps, space, decodeDeviceAuth(deviceText), commitTexts);
    deps.metrics.appealed(outcome.status);
    if ("text" in outcome) {
      deps.log("appeal.refused", { space, status: outcome.status });
      return c.text(outcome.text, outcome.status, headers);
    }
    deps.log("appeal.answered", {
      space,
      device: outcome.device,
      status: outcome.status,
      stored: outcome.json.stored,
    });
    return c.json(outcome.json, outcome.status, headers);
  };
}

/** What an appeal gets: refused before its commits were looked at (`text`), or judged (`json`). */
export type AppealOutcome =
  | { status: 400 | 403 | 413; text: string }
  | {
      status: 200 | 403;
      device: string | undefined;
      json: {
        admitted: boolean;
        stored: number;
        refusal?: string;
        refused?: { code: ErrorCodeName; message: string; device: string; seq: number };
      };
    };

/**
 * Judges an appeal once the request itself passed (token, Origin, size): the device proof, that the
 * log knows the device, its own commits (base64url texts, or bytes as an in-process relay gets them)
 * stored as an upload would be, then check 10 again. Shared by the HTTP endpoint and `inProcessRelay`.
 */
export async function decideAppeal(
  deps: Omit<AppealDeps, "cors" | "maxBodyBytes">,
  space: string,
  proof: DeviceAuth | undefined,
  commitTexts: readonly string[] | readonly Uint8Array[],
): Promise<AppealOutcome> {
  const { state } = await deps.memberships.view(space);
  if (!state) return { status: 200, device: undefined, json: { admitted: true, stored: 0 } };
  const device = provenDevice(space, proof, Date.now());
  if (device === undefined) return { status: 403, text: MEMBERSHIP_REFUSALS["device-auth"] };
  if (!state.deviceOwner.has(device) && !state.removedDevices.has(device))
    return { status: 403, text: MEMBERSHIP_REFUSALS["not-member"] };
  const commits = ownCommits(commitTexts, device);
  if (typeof commits === "string") return { status: 400, text: commits };
  if (commits.length > MAX_COMMITS_PER_BATCH || total(commits) > deps.limits.maxFrameBytes)
    return { status: 413, text: "An appeal carries at most one frame of commits." };
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
    return {
      status: 403,
      device,
      json: { admitted: false, ...result, refusal: MEMBERSHIP_REFUSALS[now.fault] },
    };
  return { status: 200, device, json: { admitted: true, ...result } };
}

/** The commits' bytes, or why the body cannot be an appeal of `device` (a 400's text). */
function ownCommits(texts: readonly string[] | readonly Uint8Array[], device: string): Uint8Array[] | string {
  const commits: Uint8Array[] = [];
  for (const text of texts) {
    let bytes: Uint8Array;
    try {
      bytes = typeof text === "string" ? decodeBase64Url(text) : text;
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
