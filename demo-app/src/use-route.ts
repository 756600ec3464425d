import { useEffect, useState } from "react";

/** What the page shows: the list, one patient, or an invitation to accept. */
export type Route = { page: "list" } | { page: "patient"; id: string } | { page: "join"; link: string };

/**
 * Reads the route from the URL fragment. The fragment keeps routing on the client (the relay serves
 * one index.html) and is where invitation links carry the clinic key (`#join=...`), which browsers never
 * send to a server.
 */
export function parseRoute(location: Location = window.location): Route {
  const hash = location.hash;
  if (hash.startsWith("#join=")) return { page: "join", link: location.href };
  const patient = /^#\/patients\/([^/?#]+)$/.exec(hash);
  if (patient?.[1]) return { page: "patient", id: decodeURIComponent(patient[1]) };
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

/** Goes to the list, replacing an invitation fragment so the key does not linger in history. */
export function leaveInvitation(): void {
  history.replaceState(null, "", `${location.pathname}#/`);
  window.dispatchEvent(new HashChangeEvent("hashchange"));
}
