// The demo as an installed offline app: after one visit its service worker serves the whole build
// (Automerge's wasm included) from the cache, so the app loads, edits and keeps data with no network at
// all, and syncs when the network is back; a new deployment is offered with an "update available" banner.
import { createHash } from "node:crypto";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Page, Response } from "@playwright/test";
import { CHROMIUM_ARGS, chromiumExecutable } from "../scripts/chromium.mjs";
import { DemoDevice, RELAY_CUT_NOISE, expectNoPageErrors } from "./support/demo-device.ts";
import {
  addPatient,
  appendToNote,
  createClinic,
  joinWithLink,
  noteArea,
  openPatient,
  patientList,
  pendingCommits,
  readInvitationLink,
  syncState,
} from "./support/demo-flows.ts";
import { expect, test } from "./support/demo-test.ts";

/** Reconnection uses backoff (up to 30 s between attempts), so convergence may take that long. */
const RECONNECT = { timeout: 45_000 };

/**
 * With the browser itself offline, Chromium reports the refused WebSocket and the failed access probe
 * with ERR_INTERNET_DISCONNECTED rather than a refused connection (see RELAY_CUT_NOISE).
 */
const OFFLINE_NOISE: readonly RegExp[] = [
  ...RELAY_CUT_NOISE,
  /Failed to load resource: net::ERR_INTERNET_DISCONNECTED \(http:\/\/127\.0\.0\.1:\d+\/sync\/[0-9a-f]+\/access\)$/,
];

/** Waits until a service worker controls the page: from then on its loads are served from the precache. */
async function waitForServiceWorker(page: Page): Promise<void> {
  await page.waitForFunction(() => navigator.serviceWorker.controller?.state === "activated");
}

test("the demo is installable: Chromium reads its manifest and finds nothing missing", async ({
  playwright,
  relay,
}) => {
  // A browser profile on disk: Chromium never offers to install from an incognito context, which is
  // what the other tests' contexts are.
  const profile = mkdtempSync(join(tmpdir(), "shoal-install-profile-"));
  const context = await playwright.chromium.launchPersistentContext(profile, {
    executablePath: chromiumExecutable(),
    args: [...CHROMIUM_ARGS],
  });
  try {
    const page = context.pages()[0] ?? (await context.newPage());
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(e.message));
    await page.goto(`${relay.url}/`);
    await waitForServiceWorker(page);
    const cdp = await context.newCDPSession(page);
    const manifest = await cdp.send("Page.getAppManifest");
    expect(manifest.url).toBe(`${relay.url}/manifest.webmanifest`);
    expect(manifest.errors).toEqual([]);
    expect(JSON.parse(manifest.data ?? "{}")).toMatchObject({
      name: "Shoal clinic demo",
      display: "standalone",
    });
    // What Chromium checks before it offers "Install": the manifest's fields and icons, a secure
    // context, a service worker in control.
    expect((await cdp.send("Page.getInstallabilityErrors")).installabilityErrors).toEqual([]);
    expect(errors).toEqual([]);
  } finally {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  }
});

test("after one visit the demo loads and edits with no network, and the offline edits sync when it is back", async ({
  browser,
  relay,
}, testInfo) => {
  test.setTimeout(150_000);
  const front = await DemoDevice.open(browser, "front");
  const ward = await DemoDevice.open(browser, "ward");
  await createClinic(front.page, relay.url, "Front desk", "East Clinic");
  await waitForServiceWorker(front.page);
  // The link first: making it visits the Staff page, and the reload below must start on the patient's.
  const link = await readInvitationLink(front.page);
  await addPatient(front.page, { name: "Ada Lovelace", ward: "General medicine" });
  await joinWithLink(ward.page, link, "Ward tablet", "East Clinic");
  await expect(ward.page.getByTestId("patient-count")).toHaveText("1 patient");
  await expect(syncState(front.page)).toHaveText("Online · up to date");

  // No network at all for the front desk: the relay process is gone and the browser is offline.
  for (const device of [front, ward]) device.allowConsoleErrors(OFFLINE_NOISE);
  await relay.stop();
  await front.context.setOffline(true);

  // A reload, as when the tablet is switched on in the morning: the page, its script and the wasm all
  // come from the service worker's cache. The HTTP cache is emptied first (a browser may evict it at
  // any time; the year-long caching of hashed assets would otherwise hide a file missing from the
  // precache), and every file the page loads must have been answered by the service worker.
  const cdp = await front.context.newCDPSession(front.page);
  await cdp.send("Network.clearBrowserCache");
  await cdp.detach();
  const loaded = recordLoadedFiles(front.page);
  const reloaded = await front.page.reload();
  expect(reloaded?.fromServiceWorker()).toBe(true);
  // The reload stays on the patient's page (the route is in the fragment).
  await expect(front.page.getByRole("heading", { level: 1, name: "Ada Lovelace" })).toBeVisible();
  await expect(front.page.getByTestId("clinic-name")).toHaveText("East Clinic");
  await expect(syncState(front.page)).toHaveText(/^Offline/);
  expect(loaded.files.some((f) => f.path.endsWith(".wasm"))).toBe(true);
  expect(loaded.files.filter((f) => !f.fromServiceWorker)).toEqual([]);
  loaded.stop();

  // Offline edits: a new patient and a note, kept in this device's IndexedDB.
  await front.page.getByRole("link", { name: "Shoal Clinic" }).click();
  await expect(patientList(front.page)).toContainText("Ada Lovelace");
  await addPatient(front.page, { name: "Grace Hopper", ward: "Cardiology" });
  await openPatient(front.page, "Ada Lovelace");
  await appendToNote(front.page, "Seen offline at 07:30.");
  await expect(pendingCommits(front.page)).toHaveText(
    /^[1-9]\d* changes? kept on this device, waiting to sync$/,
  );
  await expect(front.page.getByRole("alert")).toHaveCount(0);
  await front.screenshot(testInfo, "offline-after-reload");

  // Still offline, another reload: the edits were stored, not just held by the page.
  expect((await front.page.reload())?.fromServiceWorker()).toBe(true);
  await front.page.getByRole("link", { name: "Shoal Clinic" }).click();
  await expect(patientList(front.page)).toContainText("Grace Hopper");
  await openPatient(front.page, "Ada Lovelace");
  await expect(noteArea(front.page)).toHaveValue(/Seen offline at 07:30\./);

  // The network is back: the relay on the same port with its store, and the browser online.
  await relay.start();
  await front.context.setOffline(false);
  await expect(syncState(front.page)).toHaveText("Online · up to date", RECONNECT);
  await expect(pendingCommits(front.page)).toHaveText("All changes on the relay", RECONNECT);

  // The other device, online all along, receives what was written offline.
  await ward.page.getByRole("link", { name: "Shoal Clinic" }).click();
  await expect(ward.page.getByTestId("patient-count")).toHaveText("2 patients", RECONNECT);
  await expect(patientList(ward.page)).toContainText("Grace Hopper");
  await openPatient(ward.page, "Ada Lovelace");
  await expect(noteArea(ward.page)).toHaveValue(/Seen offline at 07:30\./, RECONNECT);

  expectNoPageErrors(front, ward);
  await Promise.all([front.close(), ward.close()]);
});

test("a new deployment is offered with an update banner and its Reload switches to it", async ({
  browser,
  relay,
}, testInfo) => {
  const nextBuild = deployableCopyWithChangedIndex();
  try {
    const device = await DemoDevice.open(browser, "desk");
    const { page } = device;
    await page.goto(`${relay.url}/`);
    await waitForServiceWorker(page);
    await expect(page.getByTestId("update-prompt")).toHaveCount(0);

    // The new version is deployed: the relay restarts on the same port serving the changed build.
    device.allowConsoleErrors(RELAY_CUT_NOISE);
    await relay.stop();
    relay.staticDir = nextBuild;
    await relay.start();

    // The next visit finds the new service worker, which installs and then waits: the page keeps
    // running the version it loaded and says that a new one is ready.
    await page.reload();
    const banner = page.getByTestId("update-prompt");
    await expect(banner).toContainText("A new version is available");
    await expect(page.locator(`meta[name="${BUILD_MARKER}"]`)).toHaveCount(0);
    await device.screenshot(testInfo, "update-available");

    // "Later" hides it; the new version keeps waiting and is offered again on the next load.
    await banner.getByRole("button", { name: "Later" }).click();
    await expect(banner).toHaveCount(0);
    await page.reload();
    await expect(banner).toBeVisible();

    // "Reload" activates the waiting worker and reloads onto the new build.
    await banner.getByRole("button", { name: "Reload" }).click();
    await expect(page.locator(`meta[name="${BUILD_MARKER}"]`)).toHaveAttribute("content", "next");
    await expect(banner).toHaveCount(0);
    await expect(page.getByRole("heading", { name: "Shoal Clinic" })).toBeVisible();

    expectNoPageErrors(device);
    await device.close();
  } finally {
    rmSync(nextBuild, { recursive: true, force: true });
  }
});

/**
 * Records the same-origin files a page loads from now on (not the relay's `/sync` endpoints), with
 * whether the service worker answered each.
 */
function recordLoadedFiles(page: Page): {
  files: { path: string; fromServiceWorker: boolean }[];
  stop: () => void;
} {
  const files: { path: string; fromServiceWorker: boolean }[] = [];
  const origin = new URL(page.url()).origin;
  const onResponse = (response: Response) => {
    const url = new URL(response.url());
    if (url.origin !== origin || url.pathname.startsWith("/sync/")) return;
    files.push({ path: url.pathname, fromServiceWorker: response.fromServiceWorker() });
  };
  page.on("response", onResponse);
  return { files, stop: () => page.off("response", onResponse) };
}

/** The `<meta>` that tells the changed build's index.html apart from the one built for the suite. */
const BUILD_MARKER = "shoal-e2e-build";

/**
 * A second deployment of the demo: a copy of the suite's build whose index.html carries a marker, with
 * the service worker's precache list updated to the new page's revision, exactly what a rebuild with a
 * changed page produces (the service worker script changes, so browsers install it), without a second
 * Vite build. Returns its directory.
 */
function deployableCopyWithChangedIndex(): string {
  const site = fileURLToPath(new URL("../dist/e2e-site", import.meta.url));
  const copy = mkdtempSync(join(tmpdir(), "shoal-next-build-"));
  cpSync(site, copy, { recursive: true });
  const indexPath = join(copy, "index.html");
  const index = readFileSync(indexPath, "utf8").replace(
    "</head>",
    `<meta name="${BUILD_MARKER}" content="next" /></head>`,
  );
  writeFileSync(indexPath, index);
  const swPath = join(copy, "sw.js");
  const sw = readFileSync(swPath, "utf8");
  // Workbox's revision of a precached file is the MD5 of its content.
  const revision = createHash("md5").update(index).digest("hex");
  const entry = /\{url:"index\.html",revision:"[0-9a-f]+"\}/;
  if (!entry.test(sw))
    throw new Error(`sw.js has no precache entry for index.html in the expected form: ${sw}`);
  writeFileSync(swPath, sw.replace(entry, `{url:"index.html",revision:"${revision}"}`));
  return copy;
}
