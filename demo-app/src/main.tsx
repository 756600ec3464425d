import { InsecureContext } from "@shoal/client";
import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { App } from "./app.tsx";
import { openClinicDatabase } from "./db.ts";
import { ErrorBoundary } from "./error-boundary.tsx";
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

try {
  const db = await openClinicDatabase();
  // Sync starts at once and keeps retrying by itself: the app works the same with or without the relay,
  // and the status bar says which it is.
  let syncProblem: string | null = null;
  try {
    db.sync({ relay: relayUrlForPage() });
  } catch (error) {
    // Plain http from another machine has no WebCrypto: the app still works on this device, and says so.
    if (!(error instanceof InsecureContext)) throw error;
    syncProblem = error.message;
  }
  root.render(
    <StrictMode>
      <ErrorBoundary what="the app">
        <App db={db} syncProblem={syncProblem} />
      </ErrorBoundary>
    </StrictMode>,
  );
} catch (error) {
  // Opening fails for real reasons (private mode without IndexedDB, a full disk): say so on the page.
  root.render(
    <p role="alert" className="fatal">
      Could not open the local database: {String(error)}
    </p>,
  );
}
