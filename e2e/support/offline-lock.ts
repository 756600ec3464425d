/** One entry of a package-lock.json (lockfileVersion 3) `packages` map. */
export interface LockEntry {
  version?: string;
  resolved?: string;
  integrity?: string;
  link?: boolean;
  optional?: boolean;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
  [field: string]: unknown;
}

/** A package whose lock entry comes from a local tarball instead of the repository's lock. */
export interface TarballPackage {
  /** The tarball's package.json (read from inside the tarball, as npm will). */
  manifest: {
    name: string;
    version: string;
    dependencies?: Record<string, string>;
    peerDependencies?: Record<string, string>;
    peerDependenciesMeta?: Record<string, { optional?: boolean }>;
    bin?: Record<string, string>;
    license?: string;
  };
  /** `file:` URL relative to the app directory, e.g. `file:../packs/shoal-client-0.1.0.tgz`. */
  resolved: string;
  /** The tarball's sha512 integrity, as `npm pack --json` prints it. */
  integrity: string;
}

/** What an app declares: its own dependencies and devDependencies, name to version or `file:` spec. */
export interface AppManifest {
  name: string;
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
}

/**
 * A package-lock.json for a new app, built from the repository's own lock: every third-party package the
 * app needs, at the version and path the repository already installed (so `npm ci --offline` finds each
 * tarball in the npm cache that the repository's `npm ci` filled, and needs no registry metadata), plus
 * the given local tarballs. The app's dependency tree is the closure of its declared dependencies, and of
 * the tarballs' declared dependencies: a dependency a tarball forgot to declare is absent from the app,
 * as it would be for a user.
 *
 * `registry` is npm's configured registry (`npm config get registry`), where the tarballs came from.
 * Throws if a required package is not in the repository's lock (the test cannot install it offline).
 */
export function offlineLock(
  repoLock: { packages: Record<string, LockEntry> },
  app: AppManifest,
  tarballs: readonly TarballPackage[],
  registry: string,
): { name: string; lockfileVersion: 3; requires: true; packages: Record<string, LockEntry> } {
  const repo = repoLock.packages;
  const local = new Map(tarballs.map((t) => [t.manifest.name, t]));
  const packages: Record<string, LockEntry> = {
    "": { name: app.name, dependencies: app.dependencies, devDependencies: app.devDependencies },
  };
  const queue: { from: string; name: string; optional: boolean }[] = [];
  const needs = (from: string, entry: LockEntry | TarballPackage["manifest"]): void => {
    for (const name of Object.keys(entry.dependencies ?? {})) queue.push({ from, name, optional: false });
    const optional = "optionalDependencies" in entry ? (entry.optionalDependencies ?? {}) : {};
    for (const name of Object.keys(optional)) queue.push({ from, name, optional: true });
    // npm installs peer dependencies too, unless they are marked optional.
    for (const name of Object.keys(entry.peerDependencies ?? {})) {
      if (!entry.peerDependenciesMeta?.[name]?.optional) queue.push({ from, name, optional: false });
    }
  };
  for (const name of [...Object.keys(app.dependencies), ...Object.keys(app.devDependencies)]) {
    queue.push({ from: "", name, optional: false });
  }
  while (queue.length > 0) {
    const { from, name, optional } = queue.shift()!;
    const tarball = local.get(name);
    if (tarball) {
      const location = `node_modules/${name}`;
      if (packages[location]) continue;
      const { manifest } = tarball;
      packages[location] = {
        version: manifest.version,
        resolved: tarball.resolved,
        integrity: tarball.integrity,
        ...(manifest.license ? { license: manifest.license } : {}),
        ...(manifest.dependencies ? { dependencies: manifest.dependencies } : {}),
        ...(manifest.peerDependencies ? { peerDependencies: manifest.peerDependencies } : {}),
        ...(manifest.peerDependenciesMeta ? { peerDependenciesMeta: manifest.peerDependenciesMeta } : {}),
        ...(manifest.bin ? { bin: manifest.bin } : {}),
      };
      // Installed at the app's top level, a tarball resolves its dependencies from there.
      needs(location, manifest);
      continue;
    }
    const location = locate(repo, from, name);
    if (location === undefined) {
      if (optional) continue;
      throw new Error(`${name} (needed by ${from || app.name}) is not in the repository's package-lock.json`);
    }
    if (packages[location]) continue;
    const entry = repo[location]!;
    if (entry.link) throw new Error(`${name} is a workspace package: pack it and pass its tarball`);
    // The repository's dev/peer flags describe its own roots, not the app's; npm recomputes them.
    const { dev: _dev, devOptional: _devOptional, peer: _peer, ...kept } = entry;
    // npm leaves registry tarball URLs out of its locks; without one, npm would ask the registry for the
    // package's metadata to find it, which the cache of an `npm ci` does not hold.
    packages[location] = { ...kept, resolved: kept.resolved ?? tarballUrl(registry, name, entry.version) };
    needs(location, entry);
  }
  return { name: app.name, lockfileVersion: 3, requires: true, packages };
}

/**
 * Where Node would find `name` from the package installed at `from` ("" = the root): its own
 * node_modules first, then each enclosing one.
 */
function locate(packages: Record<string, LockEntry>, from: string, name: string): string | undefined {
  let base = from;
  for (;;) {
    const candidate = base === "" ? `node_modules/${name}` : `${base}/node_modules/${name}`;
    if (packages[candidate]) return candidate;
    if (base === "") return undefined;
    const cut = base.lastIndexOf("/node_modules/");
    base = cut < 0 ? "" : base.slice(0, cut);
  }
}

/** The registry's tarball URL of `name@version`, in npm's layout: `<registry>/<name>/-/<base>-<version>.tgz`. */
function tarballUrl(registry: string, name: string, version: string | undefined): string {
  if (!version) throw new Error(`${name} has no version in the repository's package-lock.json`);
  const base = name.slice(name.indexOf("/") + 1);
  return `${registry.replace(/\/+$/, "")}/${name}/-/${base}-${version}.tgz`;
}
