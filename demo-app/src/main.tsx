import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { App } from "./App.tsx";
import { openDemoDatabase } from "./db.ts";
import "./styles.css";

const container = document.getElementById("root");
if (!container) throw new Error("index.html has no #root element");
const root = createRoot(container);

try {
  const db = await openDemoDatabase();
  root.render(
    <StrictMode>
      <App db={db} />
    </StrictMode>,
  );
} catch (error) {
  // Opening fails for real reasons (private mode without IndexedDB, a full disk): say so on the page.
  root.render(<p role="alert">Could not open the local database: {String(error)}</p>);
  throw error;
}
