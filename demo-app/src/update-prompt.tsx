/// <reference types="vite-plugin-pwa/react" />
import { useRegisterSW } from "virtual:pwa-register/react";
import "./update-prompt.css";

/**
 * Registers the demo's service worker (which makes the app load offline) and, when a newer version of
 * the app has been downloaded and is waiting, offers to switch to it. The new version never takes over
 * by itself: a reload under someone typing a note would be worse than running yesterday's build a
 * little longer. "Reload" tells the waiting worker to activate; every open tab of the app then reloads
 * onto the new version (the library reloads on the `controlling` event). "Later" hides the banner; the
 * new version then starts once every tab of the app has been closed. In `vite dev` there is no service
 * worker and this renders nothing.
 */
export function UpdatePrompt() {
  const {
    needRefresh: [needRefresh, setNeedRefresh],
    updateServiceWorker,
  } = useRegisterSW({
    onRegisterError(error: unknown) {
      // Not fatal: the app works online without a service worker; it just will not load offline.
      console.warn("Shoal demo: the offline service worker could not be registered", error);
    },
  });
  if (!needRefresh) return null;
  return (
    <div role="status" className="update-prompt" data-testid="update-prompt">
      <span>A new version is available</span>
      <span aria-hidden="true">—</span>
      <button type="button" onClick={() => void updateServiceWorker()}>
        Reload
      </button>
      <button type="button" className="secondary" onClick={() => setNeedRefresh(false)}>
        Later
      </button>
    </div>
  );
}
