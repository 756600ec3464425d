// The packages as a user gets them: `npm pack` of @shoal/client and @shoal/sync-server, installed into a
// new Vite + React + TypeScript app in a temporary directory outside the repository, with no registry:
// strict `tsc`, `vite build`, `vite dev`, and the relay run from the relay tarball's `shoal-relay`.
//
// Offline install: the app gets a package-lock.json cut from the repository's own (support/offline-lock.ts,
// with each registry tarball's URL and integrity), and `npm ci --offline` installs it. Third-party packages
// therefore come, at the versions the repository uses, from the npm cache that the repository's own
// `npm ci` filled (tarballs only: no registry metadata is needed), and the Shoal packages from their
// tarballs only: the app's node_modules holds real copies unpacked by npm, never links into the
// repository, and the dependency tree is the closure of what the tarballs declare, so a runtime
// dependency missing from a package.json is missing here too.
// One step is borrowed: install scripts are skipped (`--ignore-scripts`), because better-sqlite3's would
// compile SQLite for a minute or try to download a prebuilt binary; its compiled addon is copied from the
// repository's node_modules (same version, same Node). That is better-sqlite3's install, not Shoal's.
import {
  copyFileSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { expect, test, type Browser, type BrowserContext, type Page } from "@playwright/test";
import { runCommand, startServer, type RunningServer } from "./support/child-processes.ts";
import { freshViteAppFiles, writeFiles } from "./support/fresh-vite-app.ts";
import { offlineLock, type LockEntry, type TarballPackage } from "./support/offline-lock.ts";
import { packedPackages, type PackResult } from "./support/packed-packages.ts";
import { collectPageErrors } from "./support/page-errors.ts";

const repoRoot = fileURLToPath(new URL("..", import.meta.url));

test("a fresh Vite + React + TypeScript app installs the packed packages offline, type-checks, builds, and two browsers sync through the packed relay", async ({
  browser,
}) => {
  // 35 to 60 s here when packing itself (two tsc builds; usually done in the background since the run
  // began), npm ci, tsc twice and vite build side by side, two servers, two pages.
  test.setTimeout(240_000);
  const work = mkdtempSync(join(tmpdir(), "shoal-fresh-app-"));
  const servers: RunningServer[] = [];
  const contexts: BrowserContext[] = [];
  try {
    const packs = join(work, "packs");
    const app = join(work, "app");
    mkdirSync(packs);
    mkdirSync(app);

    // Packed in the background since the run began (support/packed-packages.ts), or here and now.
    const [client, relay] = await test.step("npm pack both packages", async () => {
      const packed = await packedPackages(packs, 180_000);
      for (const p of [packed.client, packed.relay])
        if (packed.dir !== packs) copyFileSync(join(packed.dir, p.filename), join(packs, p.filename));
      return [packed.client, packed.relay] as const;
    });
    for (const pack of [client, relay]) {
      const paths = pack.files.map((f) => f.path);
      expect(paths, `${pack.name} ships its README and LICENSE`).toEqual(
        expect.arrayContaining(["README.md", "LICENSE", "package.json"]),
      );
      expect(paths.filter((p) => /\.test\.|(^|\/)test\//.test(p) || p.startsWith("src/"))).toEqual([]);
      expect(paths.filter((p) => !/^(dist\/|README\.md$|LICENSE$|package\.json$)/.test(p))).toEqual([]);
    }
    expect(client.files.map((f) => f.path)).toEqual(
      expect.arrayContaining([
        "dist/index.js",
        "dist/index.d.ts",
        "dist/vite/index.js",
        "dist/react/index.js",
      ]),
    );
    expect(relay.files.map((f) => f.path)).toEqual(
      expect.arrayContaining(["dist/cli.js", "dist/index.d.ts"]),
    );

    await test.step("install the tarballs offline into a new app", async () => {
      const repoLock = JSON.parse(readFileSync(join(repoRoot, "package-lock.json"), "utf8")) as {
        packages: Record<string, LockEntry>;
      };
      const version = (name: string): string => {
        const v = repoLock.packages[`node_modules/${name}`]?.version;
        if (!v) throw new Error(`${name} is not installed in the repository`);
        return v;
      };
      const deps = {
        dependencies: {
          "@shoal/client": `file:../packs/${client.filename}`,
          react: version("react"),
          "react-dom": version("react-dom"),
        },
        devDependencies: {
          "@shoal/sync-server": `file:../packs/${relay.filename}`,
          "@types/node": version("@types/node"),
          "@types/react": version("@types/react"),
          "@types/react-dom": version("@types/react-dom"),
          "@vitejs/plugin-react": version("@vitejs/plugin-react"),
          typescript: version("typescript"),
          vite: version("vite"),
        },
      };
      const files = freshViteAppFiles(deps);
      const tarballs = await Promise.all([client, relay].map((p) => tarballPackage(packs, p)));
      const registry = (
        await runCommand("npm", ["config", "get", "registry"], { cwd: app, timeoutMs: 20_000 })
      ).trim();
      const lock = offlineLock(repoLock, { name: "shoal-fresh-app", ...deps }, tarballs, registry);
      writeFiles(app, { ...files, "package-lock.json": JSON.stringify(lock, null, 2) + "\n" });
      await runCommand("npm", ["ci", "--offline", "--ignore-scripts", "--no-audit", "--no-fund"], {
        cwd: app,
        timeoutMs: 90_000,
      });
      const addon = "node_modules/better-sqlite3/build/Release/better_sqlite3.node";
      mkdirSync(join(app, "node_modules/better-sqlite3/build/Release"), { recursive: true });
      copyFileSync(join(repoRoot, addon), join(app, addon));
      // Real directories unpacked from the tarballs, not links back into the repository.
      for (const name of ["@shoal/client", "@shoal/sync-server"]) {
        expect(lstatSync(join(app, "node_modules", name)).isSymbolicLink(), name).toBe(false);
        expect(existsSync(join(app, "node_modules", name, "src")), `${name} ships no sources`).toBe(false);
      }
    });

    // Independent of each other: run side by side (the browser is idle meanwhile).
    const audited = test.step("npx shoal-audit verify, from the client tarball in Node", async () => {
      // An audit file the client's tests wrote (client/test/audit): intact, then with one byte flipped.
      const fixture = join(repoRoot, "client", "test", "audit", "fixtures", "clinic.audit");
      const audit = join(app, "node_modules", ".bin", "shoal-audit");
      const intact = await runCommand(audit, ["verify", fixture], { cwd: app, timeoutMs: 30_000 });
      expect(intact).toContain("VERDICT: INTACT");
      const flipped = readFileSync(fixture);
      flipped[Math.floor(flipped.length / 2)]! ^= 0x10;
      writeFileSync(join(work, "flipped.audit"), flipped);
      const refused = await runCommand(audit, ["verify", join(work, "flipped.audit")], {
        cwd: app,
        timeoutMs: 30_000,
      }).then(
        () => "exit 0",
        (e: Error) => e.message,
      );
      expect(refused).toContain("failed (exit 1)");
      expect(refused).toMatch(/PROBLEM in \S.* at offset \d+/);
    });

    const built = test.step("strict tsc and vite build", async () => {
      // The app's `build` script runs these one after the other; none reads what another writes.
      await Promise.all([
        ...["tsconfig.app.json", "tsconfig.node.json"].map((project) =>
          runCommand(process.execPath, ["node_modules/typescript/bin/tsc", "-p", project], {
            cwd: app,
            timeoutMs: 90_000,
          }),
        ),
        runCommand(process.execPath, ["node_modules/vite/bin/vite.js", "build"], {
          cwd: app,
          timeoutMs: 90_000,
        }),
      ]);
      const assets = readdirSync(join(app, "dist", "assets"));
      expect(
        assets.some((a) => a.endsWith(".wasm")),
        `Automerge's wasm among ${assets.join(", ")}`,
      ).toBe(true);
    });
    await Promise.all([audited, built]);

    const dev = await test.step("vite dev", async () => {
      const server = await startServer(
        process.execPath,
        ["node_modules/vite/bin/vite.js", "--host", "127.0.0.1", "--port", "0", "--strictPort"],
        { cwd: app, timeoutMs: 30_000, ready: /Local:\s+(http:\/\/127\.0\.0\.1:\d+)/ },
      );
      servers.push(server);
      return server.ready[1]!;
    });

    const relayUrl = await test.step("the relay from the relay tarball", async () => {
      // The relay also serves the production build, so the second device runs what `vite build` made.
      const server = await startServer(
        join(app, "node_modules", ".bin", "shoal-relay"),
        [
          ...["--port", "0", "--host", "127.0.0.1", "--store", "sqlite", "--data", join(work, "relay-data")],
          ...["--static", join(app, "dist"), "--origin", "self", "--origin", dev, "--quiet"],
        ],
        { cwd: app, timeoutMs: 20_000, ready: /"event":"listening".*"url":"(http:\/\/127\.0\.0\.1:\d+)"/ },
      );
      servers.push(server);
      return server.ready[1]!;
    });

    await test.step("two Chromium contexts sync a record through the relay", async () => {
      const relayWs = relayUrl.replace(/^http/, "ws");
      // Device A: the app under `vite dev`. Device B: the production build, served by the relay.
      const a = await openDevice(browser, contexts, `${dev}/?relay=${encodeURIComponent(relayWs)}`);
      const invite = a.page.getByTestId("invite");
      // The first page load waits for Vite to pre-bundle the dependencies.
      await withPageErrors(a, () => expect(invite).toHaveAttribute("href", /#join=/, { timeout: 30_000 }));
      const link = new URL((await invite.getAttribute("href"))!);
      await a.page.getByLabel("Note").fill("written on the dev server");
      await a.page.getByRole("button", { name: "Add" }).click();

      const b = await openDevice(
        browser,
        contexts,
        `${relayUrl}/?relay=${encodeURIComponent(relayWs)}${link.hash}`,
      );
      await withPageErrors(b, () =>
        expect(b.page.getByRole("listitem")).toHaveText(["written on the dev server"], { timeout: 20_000 }),
      );
      await b.page.getByLabel("Note").fill("written on the build");
      await b.page.getByRole("button", { name: "Add" }).click();
      await expect(a.page.getByRole("listitem")).toHaveText(
        ["written on the dev server", "written on the build"],
        { timeout: 20_000 },
      );
      for (const device of [a, b]) await expect(device.page.getByTestId("status")).toHaveText("synced");
      expect([...a.errors, ...b.errors]).toEqual([]);
    });
  } finally {
    await Promise.all(contexts.map((c) => c.close()));
    await Promise.all(servers.map((s) => s.stop()));
    rmSync(work, { recursive: true, force: true });
  }
});

/** The tarball's own package.json and where it is, for the app's lock file. */
async function tarballPackage(packs: string, pack: PackResult): Promise<TarballPackage> {
  const file = join(packs, pack.filename);
  const manifest = JSON.parse(
    await runCommand("tar", ["-xzOf", file, "package/package.json"], { cwd: packs, timeoutMs: 10_000 }),
  ) as TarballPackage["manifest"];
  return { manifest, resolved: `file:../packs/${pack.filename}`, integrity: pack.integrity };
}

/** Runs `check`; if it fails, the failure also lists what the page reported (a blank page says why). */
async function withPageErrors(device: { errors: string[] }, check: () => Promise<void>): Promise<void> {
  try {
    await check();
  } catch (error) {
    if (device.errors.length === 0) throw error;
    throw new Error(
      `${error instanceof Error ? error.message : String(error)}\npage errors:\n${device.errors.join("\n")}`,
    );
  }
}

/**
 * A new browser context (its own IndexedDB: another device) on `url`, collecting page errors; it is
 * added to `contexts`, which the test closes at the end.
 */
async function openDevice(
  browser: Browser,
  contexts: BrowserContext[],
  url: string,
): Promise<{ page: Page; errors: string[] }> {
  const context = await browser.newContext();
  contexts.push(context);
  const page = await context.newPage();
  const errors = collectPageErrors(page);
  await page.goto(url);
  return { page, errors };
}
