import type { Context } from "hono";
import { isIdHex } from "@shoal/client/protocol";
import type { AccessProbeDeps } from "./access-probe.ts";
import { originAllowed, parseTokenText, tokenMatches } from "./auth.ts";
import { corsHeaders } from "./cors-headers.ts";
import { readSmallText } from "./small-text-body.ts";

/** A request to a known space whose token matched: its id, its CORS headers and the body's other parts. */
export interface SpaceRequest {
  space: string;
  headers: Record<string, string>;
  /** The `.`-separated parts of the body after the token. */
  parts: string[];
}

/** What the endpoint's refusals are counted and logged as, and how much of a body it reads. */
export interface SpaceRequestOptions {
  /** The log event of a refusal, e.g. `invitation-log.refused`. */
  event: string;
  maxBytes: number;
  /** The 413 text. */
  tooLarge: string;
  /** At most this many parts after the token (more: the body is no token, 401). */
  maxParts?: number;
  /** Counts a refusal by status, for the endpoints that have a metric. */
  count?: (status: number) => void;
}

/**
 * The checks every `text/plain` POST endpoint of a known space runs first, in this order: the space id
 * (400), the Origin (403), the body's size (413), the token in front (401), a space the relay knows
 * (404) whose registered hash matches the token (403, constant-time compare). Returns the request, or
 * the refusal to answer with, CORS headers included. The token is never logged, counted or echoed.
 *
 * @example
 * const request = await spaceRequest(c, deps, { event: "appeal.refused", maxBytes, tooLarge: "…" });
 * if (request instanceof Response) return request;
 */
export async function spaceRequest(
  c: Context,
  deps: Pick<AccessProbeDeps, "store" | "log" | "allowedOrigins">,
  options: SpaceRequestOptions,
): Promise<SpaceRequest | Response> {
  const space = c.req.param("space") ?? "";
  const origin = c.req.header("origin");
  const allowed = originAllowed(deps.allowedOrigins, origin, c.req.header("host"));
  const headers = corsHeaders(allowed, origin);
  const refuse = (status: 400 | 401 | 403 | 404 | 413, text: string) => {
    options.count?.(status);
    deps.log(options.event, { space: isIdHex(space) ? space : undefined, status });
    return c.text(text, status, headers);
  };
  if (!isIdHex(space)) return refuse(400, "A space id is 32 lowercase hex characters.");
  if (!allowed) return refuse(403, "Origin not allowed.");
  const body = await readSmallText(c, options.maxBytes);
  if (body === undefined) return refuse(413, options.tooLarge);
  const [tokenText = "", ...parts] = body.trim().split(".");
  const token = parts.length <= (options.maxParts ?? Infinity) ? parseTokenText(tokenText) : undefined;
  if (!token) return refuse(401, "Missing or malformed access token.");
  const stored = await deps.store.tokenHash(space);
  if (stored === undefined) return refuse(404, "This space is not registered here.");
  if (!tokenMatches(token, stored)) return refuse(403, "Wrong access token for this space.");
  return { space, headers, parts };
}
