// Builds a published package (`client` or `sync-server`) into its dist/: ESM JavaScript and .d.ts from
// the package's tsconfig.build.json. Run by `npm run build`, by each package's `prepack` (so `npm pack`
// never ships a stale build) and by `npm start`. The relay needs the client built first: it compiles
// against the client's published declarations, as an installed relay would.
// Usage: node scripts/build-package.mjs [client] [sync-server]   (no argument: both, client first)
import { spawnSync } from "node:child_process";
import { chmodSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const tsc = join(root, "node_modules", "typescript", "bin", "tsc");
export const PACKAGES = ["client", "sync-server"];

/** The packages' commands (package.json `bin`): Node scripts, so they need a shebang and the exec bit. */
const BIN_FILES = { client: ["audit/cli.js"], "sync-server": ["cli.js"] };

/** Every file under `dir`, recursively. */
function filesUnder(dir) {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath, entry.name));
}

/**
 * tsc rewrites the sources' "./x.ts" imports to "./x.js" in JavaScript but keeps them in declarations.
 * TypeScript 5 reads those, older compilers and other declaration readers do not: say ".js" there too.
 */
function rewriteDeclarationImports(dist) {
  const relativeTs = /((?:from|import)\s*\(?\s*)(["'])(\.{1,2}\/[^"']*?)\.ts\2/g;
  for (const file of filesUnder(dist).filter((f) => f.endsWith(".d.ts"))) {
    const text = readFileSync(file, "utf8");
    const rewritten = text.replace(relativeTs, "$1$2$3.js$2");
    if (rewritten !== text) writeFileSync(file, rewritten);
  }
}

/**
 * Every package the built JavaScript imports must be one the package.json declares (a dependency or a
 * peer dependency): an installed package finds nothing else. Catches a test helper that became
 * reachable from an entry point (it would import vitest) or a dependency left out of package.json.
 */
function checkImports(dir, dist) {
  const manifest = JSON.parse(readFileSync(join(dir, "package.json"), "utf8"));
  const declared = new Set([
    manifest.name,
    ...Object.keys(manifest.dependencies ?? {}),
    ...Object.keys(manifest.peerDependencies ?? {}),
  ]);
  // Import and export statements start their line in tsc's output; doc comments (" * import ...") do not.
  const statement = /^(?:import|export)\b[^;]*?\bfrom\s*["']([^"']+)["']|^import\s*["']([^"']+)["']/gm;
  const undeclared = new Set();
  for (const file of filesUnder(dist).filter((f) => f.endsWith(".js"))) {
    for (const match of readFileSync(file, "utf8").matchAll(statement)) {
      const specifier = match[1] ?? match[2];
      if (specifier.startsWith(".") || specifier.startsWith("node:")) continue;
      const name = specifier
        .split("/")
        .slice(0, specifier.startsWith("@") ? 2 : 1)
        .join("/");
      if (!declared.has(name)) undeclared.add(`${name} (${file.slice(dist.length + 1)})`);
    }
  }
  if (undeclared.size > 0) {
    throw new Error(
      `build-package: ${manifest.name} imports undeclared packages: ${[...undeclared].join(", ")}`,
    );
  }
}

/** Builds one package; throws with tsc's exit status if it fails. */
export function buildPackage(name) {
  if (!PACKAGES.includes(name)) throw new Error(`build-package: unknown package ${JSON.stringify(name)}`);
  const dir = join(root, name);
  const dist = join(dir, "dist");
  // A file removed from the sources must not linger in the tarball.
  rmSync(dist, { recursive: true, force: true });
  const result = spawnSync(process.execPath, [tsc, "-p", join(dir, "tsconfig.build.json")], {
    cwd: root,
    stdio: "inherit",
  });
  if (result.status !== 0)
    throw new Error(`build-package: tsc failed for ${name} (${result.status ?? result.signal})`);
  rewriteDeclarationImports(dist);
  checkImports(dir, dist);
  for (const bin of BIN_FILES[name] ?? []) {
    const file = join(dist, bin);
    const text = readFileSync(file, "utf8");
    if (!text.startsWith("#!")) writeFileSync(file, `#!/usr/bin/env node\n${text}`);
    chmodSync(file, 0o755);
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const names = process.argv.slice(2);
  for (const name of names.length > 0 ? names : PACKAGES) buildPackage(name);
}
