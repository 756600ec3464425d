/**
 * The headers of every answer of the relay's small browser endpoints (the access probe, the invitation
 * log) to a request whose `Origin` is `allowed`: that Origin, never `*`, since the answer is about one
 * caller's token; `Vary: Origin` so a cache in between does not hand one origin's answer to another;
 * `no-store`, since the answer changes with the space. A `text/plain` POST without custom headers is a
 * CORS simple request, so these are all a page needs to read the status and body.
 *
 * @example
 * return c.text(text, 403, corsHeaders(allowed, c.req.header("origin")));
 */
export function corsHeaders(allowed: boolean, origin: string | undefined): Record<string, string> {
  const headers: Record<string, string> = { Vary: "Origin", "Cache-Control": "no-store" };
  if (allowed && origin !== undefined) headers["Access-Control-Allow-Origin"] = origin;
  return headers;
}
