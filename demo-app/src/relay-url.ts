/**
 * The relay this page syncs with: the server that served the page (`npm start` and the e2e relay both
 * serve the app with `--static`), so the WebSocket goes to the same origin and needs no configuration.
 */
export function relayUrlForPage(location: Location = window.location): string {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}`;
}
