/**
 * The clinic name an invitation link carries (`#invite=<space>.<secret>.<check>&...&name=...`,
 * or an open clinic's `#join=<space>.<key>.<check>&name=...`), to greet the
 * person joining before the link is validated. Null when the link has none.
 */
export function invitationClinicName(link: string): string | null {
  const hash = link.indexOf("#");
  if (hash < 0) return null;
  return new URLSearchParams(link.slice(hash + 1)).get("name");
}
