import { InsecureContext } from "@shoal/client";
import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { App } from "./app.tsx";
import { openClinicDatabase, type ClinicDatabase } from "./db.ts";
import { ErrorBoundary } from "./error-boundary.tsx";
import { LockScreen, PinGate, pinLockWanted } from "./pin-lock.tsx";
import { reconnectBackoff } from "./reconnect-setting.ts";
import { relayUrlForPage } from "./relay-url.ts";
import { UpdatePrompt } from "./update-prompt.tsx";
import { takeInvitation } from "./use-route.ts";
import "./styles.css";

// First of all: an invitation's key leaves the address bar before anything can fail.
takeInvitation();

const container = document.getElementById("root");
if (!container) throw new Error("index.html has no #root element");
const root = createRoot(container);

// The service worker and its update banner live in a root of their own, started before the database:
// if opening the database fails, a newer version of the app (which may fix it) can still be offered.
const updateContainer = document.getElementById("update-prompt");
if (!updateContainer) throw new Error("index.html has no #update-prompt element");
createRoot(updateContainer).render(<UpdatePrompt />);

/** Starts sync and shows the app (inside the lock screen for the PIN-locked clinic). */
function start(db: ClinicDatabase, locked: boolean): void {
  // Sync starts at once and keeps retrying by itself: the app works the same with or without the relay,
  // and the status bar says which it is. While the PIN lock is on, sync pauses and resumes on unlock.
  let syncProblem: string | null = null;
  try {
    const backoff = reconnectBackoff();
    db.sync({ relay: relayUrlForPage(), ...(backoff && { backoff }) });
  } catch (error) {
    // Plain http from another machine has no WebCrypto: the app still works on this device, and says so.
    if (!(error instanceof InsecureContext)) throw error;
    syncProblem = error.message;
  }
  const app = <App db={db} syncProblem={syncProblem} />;
  root.render(
    <StrictMode>
      <ErrorBoundary what="the app">{locked ? <LockScreen db={db}>{app}</LockScreen> : app}</ErrorBoundary>
    </StrictMode>,
  );
}

function showFatal(error: unknown): void {
  // Opening fails for real reasons (private mode without IndexedDB, a full disk): say so on the page.
  root.render(
    <p role="alert" className="fatal">
      Could not open the local database: {String(error)}
    </p>,
  );
}

if (pinLockWanted()) {
  // Opt-in (`?pin`): the clinic of this device is encrypted at rest under a PIN asked here.
  root.render(
    <StrictMode>
      <PinGate
        onOpen={(db) => {
          try {
            start(db, true);
          } catch (error) {
            showFatal(error);
          }
        }}
      />
    </StrictMode>,
  );
} else {
  try {
    start(await openClinicDatabase(), false);
  } catch (error) {
    showFatal(error);
  }
}
