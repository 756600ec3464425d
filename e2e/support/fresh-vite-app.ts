import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";

/**
 * The files of a new Vite + React + TypeScript app that uses the published packages the way the README
 * tells a user to: `@shoal/client` (with `@shoal/client/react` and the `@shoal/client/vite` plugin),
 * and `@shoal/sync-server` for its `shoal-relay` command. The tsconfigs are strict, in the shape of
 * Vite's react-ts template (tsconfig.app.json, tsconfig.node.json), and also check the packages'
 * declarations (`skipLibCheck: false`).
 *
 * The page opens a database, syncs with the relay named by `?relay=`, creates a space (or joins the one
 * in an invitation link's `#join=` fragment), shows the invitation link, and adds and lists notes.
 */
export function freshViteAppFiles(deps: {
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
}): Record<string, string> {
  const packageJson = {
    name: "shoal-fresh-app",
    private: true,
    version: "0.0.0",
    type: "module",
    scripts: { dev: "vite", build: "tsc -p tsconfig.app.json && tsc -p tsconfig.node.json && vite build" },
    ...deps,
  };
  // Vite's react-ts template splits the page's code (DOM, vite/client) from vite.config.ts (Node).
  const shared = {
    target: "ES2022",
    module: "ESNext",
    moduleResolution: "bundler",
    allowImportingTsExtensions: true,
    verbatimModuleSyntax: true,
    moduleDetection: "force",
    noEmit: true,
    strict: true,
    noUncheckedIndexedAccess: true,
    noUnusedLocals: true,
    noUnusedParameters: true,
    erasableSyntaxOnly: true,
    noFallthroughCasesInSwitch: true,
    noUncheckedSideEffectImports: true,
    // The template skips them; checking them here proves the packages' declarations compile. (Automerge's
    // own declarations then need the Disposable lib: see `lib` below; with the template's skipLibCheck
    // an app needs nothing.)
    skipLibCheck: false,
  };
  const tsconfigApp = {
    compilerOptions: {
      ...shared,
      lib: ["ES2022", "ESNext.Disposable", "DOM", "DOM.Iterable"],
      types: ["vite/client"],
      jsx: "react-jsx",
    },
    include: ["src"],
  };
  const tsconfigNode = {
    compilerOptions: { ...shared, lib: ["ES2023"], types: ["node"] },
    include: ["vite.config.ts"],
  };
  return {
    "package.json": JSON.stringify(packageJson, null, 2) + "\n",
    "tsconfig.app.json": JSON.stringify(tsconfigApp, null, 2) + "\n",
    "tsconfig.node.json": JSON.stringify(tsconfigNode, null, 2) + "\n",
    "vite.config.ts": `import react from "@vitejs/plugin-react";
import { shoal } from "@shoal/client/vite";
import { defineConfig } from "vite";

export default defineConfig({ plugins: [react(), shoal()] });
`,
    "index.html": `<!doctype html>
<html lang="en">
  <head>
    <meta charset="UTF-8" />
    <title>Fresh Shoal app</title>
    <link rel="icon" href="data:," />
  </head>
  <body>
    <div id="root"></div>
    <script type="module" src="/src/main.tsx"></script>
  </body>
</html>
`,
    "src/main.tsx": `import { createRoot } from "react-dom/client";
import { App } from "./App.tsx";

const root = document.getElementById("root");
if (!root) throw new Error("index.html has no #root");
createRoot(root).render(<App />);
`,
    "src/App.tsx": `import { openDatabase, type Database, type Space, type SyncStatus } from "@shoal/client";
import { useLiveQuery } from "@shoal/client/react";
import type { SyncOptions } from "@shoal/client/sync";
import { useEffect, useState, type FormEvent, type ReactElement } from "react";

interface Note {
  text: string;
  author: string;
}
type Db = Database<{ notes: Note }>;

interface Session {
  db: Db;
  space: Space;
  invite: string;
}

const relay = new URLSearchParams(location.search).get("relay") ?? "ws://127.0.0.1:8787";

async function openSession(): Promise<Session> {
  const db = await openDatabase<{ notes: Note }>({
    name: "fresh-app",
    collections: { notes: "id, author" },
  });
  const options: SyncOptions = { relay }; // the sync entry point's types, from the tarball
  db.sync(options);
  const space = location.hash.startsWith("#join=")
    ? await db.join(location.href)
    : await db.createSpace({ name: "Team" });
  const invite = await db.invite(space, \`\${location.origin}/?relay=\${encodeURIComponent(relay)}\`);
  return { db, space, invite };
}

export function App(): ReactElement {
  const [session, setSession] = useState<Session>();
  const [error, setError] = useState<string>();
  useEffect(() => {
    openSession().then(setSession, (e: unknown) => setError(e instanceof Error ? e.message : String(e)));
  }, []);
  if (error !== undefined) return <p role="alert">{error}</p>;
  if (!session) return <p>Opening…</p>;
  return <Notes {...session} />;
}

function Notes({ db, space, invite }: Session): ReactElement {
  const notes = useLiveQuery(() => db.notes.orderBy("id").toArray(), [db]) ?? [];
  const [state, setState] = useState<SyncStatus["state"]>("local");
  const [draft, setDraft] = useState("");
  useEffect(() => {
    const sub = db.status.subscribe((s) => setState(s.state));
    return () => sub.unsubscribe();
  }, [db]);
  const add = (event: FormEvent): void => {
    event.preventDefault();
    void db.notes.insert({ text: draft, author: db.deviceId }, { space });
    setDraft("");
  };
  return (
    <main>
      <p data-testid="status">{state}</p>
      <a data-testid="invite" href={invite}>
        Invite to {space.name}
      </a>
      <form onSubmit={add}>
        <input aria-label="Note" value={draft} onChange={(e) => setDraft(e.target.value)} />
        <button type="submit">Add</button>
      </form>
      <ul>
        {notes.map((note) => (
          <li key={note.id}>{note.text}</li>
        ))}
      </ul>
    </main>
  );
}
`,
  };
}

/** Writes `files` (relative path to content) under `dir`. */
export function writeFiles(dir: string, files: Record<string, string>): void {
  for (const [path, content] of Object.entries(files)) {
    const file = join(dir, path);
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, content);
  }
}
