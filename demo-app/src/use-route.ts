import { useEffect, useState } from "react";

/** What the page shows: the list, one patient, or an invitation to accept. */
export type Route =
  | { page: "list" }
  | { page: "staff" }
  | { page: "stock" }
  | { page: "patient"; id: string }
  | { page: "join"; link: string };

/** The invitation link the page was opened with, held in memory only (see `takeInvitation`). */
let invitation: string | null = null;

/** Fragments of links that admit a device: a member invitation (`#invite=`) or an open clinic's key link. */
const INVITATION = /^#(invite|join)=/;

/**
 * Moves an invitation link (`#invite=<space>.<secret>...`, or an open clinic's `#join=<space>.<key>...`)
 * out of the address bar into memory, at once: its fragment carries a secret, which must not stay in the address bar, the history or a bookmark
 * whatever happens next (a failed join included). Replacing the history entry removes it from both.
 * Called before the database opens, and again on every fragment change (a link pasted into the
 * address bar of an open app).
 */
export function takeInvitation(): void {
  if (!INVITATION.test(window.location.hash)) return;
  invitation = window.location.href;
  history.replaceState(null, "", `${window.location.pathname}${window.location.search}#/`);
}

/**
 * Reads the route from the URL fragment. The fragment keeps routing on the client (the relay serves
 * one index.html) and is where invitation links carry their secret (`#invite=...`), which browsers never
 * send to a server; such a link is taken out of the address bar first and routed to from memory.
 */
export function parseRoute(location: Location = window.location): Route {
  takeInvitation();
  if (invitation) return { page: "join", link: invitation };
  const hash = location.hash;
  const patient = /^#\/patients\/([^/?#]+)$/.exec(hash);
  if (patient?.[1]) return { page: "patient", id: decodeURIComponent(patient[1]) };
  if (hash === "#/staff") return { page: "staff" };
  if (hash === "#/stock") return { page: "stock" };
  return { page: "list" };
}

/** The current route, following back/forward and links. */
export function useRoute(): Route {
  const [route, setRoute] = useState<Route>(() => parseRoute());
  useEffect(() => {
    const onChange = () => setRoute(parseRoute());
    window.addEventListener("hashchange", onChange);
    return () => window.removeEventListener("hashchange", onChange);
  }, []);
  return route;
}

/** The link to a patient's page. */
export function patientHref(id: string): string {
  return `#/patients/${encodeURIComponent(id)}`;
}

/** Forgets the invitation (joined, or given up) and goes to the list. */
export function leaveInvitation(): void {
  invitation = null;
  history.replaceState(null, "", `${location.pathname}#/`);
  window.dispatchEvent(new HashChangeEvent("hashchange"));
}
