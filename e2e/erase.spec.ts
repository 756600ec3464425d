// Issue 16, item 1: erase with receipts, through the demo and a real relay. Three devices; the lab
// laptop is switched off (its tab closed) while the front desk erases a patient and the ward applies it;
// when the laptop comes back it drops the patient and the receipts read 3 of 3. The patient's canary
// strings are then in no device's IndexedDB and in no file of the relay's data directory (WAL included),
// and importing a bundle file exported before the erase does not bring the patient back.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import type { Page } from "@playwright/test";
import { DemoDevice, expectNoPageErrors } from "./support/demo-device.ts";
import {
  addPatient,
  appendToNote,
  backToList,
  createClinic,
  joinWithLink,
  openPatient,
  patientList,
  pendingCommits,
  readInvitationLink,
} from "./support/demo-flows.ts";
import { expect, test } from "./support/demo-test.ts";
import { readAllIndexedDb } from "./support/read-all-indexeddb.ts";

const NAME = "Erin Canary-7b2f";
const NOTE = "canary-erase-5c1d9e";
const SYNC = { timeout: 45_000 };

/** Every file under `dir`, as latin1 text. */
function filesOf(dir: string): { path: string; text: string }[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? filesOf(path) : [{ path, text: readFileSync(path, "latin1") }];
  });
}

async function expectNoCanary(page: Page) {
  const all = await readAllIndexedDb(page);
  expect(all).not.toContain(NAME);
  expect(all).not.toContain(NOTE);
}

test("an admin erases a patient while a device is offline; every device drops it and signs a receipt", async ({
  browser,
  relay,
}, testInfo) => {
  test.setTimeout(180_000);
  const front = await DemoDevice.open(browser, "front");
  const ward = await DemoDevice.open(browser, "ward");
  const lab = await DemoDevice.open(browser, "lab");
  await createClinic(front.page, relay.url, "Front desk", "Erase Clinic");
  await joinWithLink(ward.page, await readInvitationLink(front.page), "Ward tablet", "Erase Clinic");
  await joinWithLink(lab.page, await readInvitationLink(front.page), "Lab laptop", "Erase Clinic");

  await addPatient(front.page, { name: "Keeper Patient", ward: "General medicine" });
  await backToList(front.page);
  await addPatient(front.page, { name: NAME, ward: "Cardiology" });
  await appendToNote(front.page, `${NOTE} history of palpitations.`);
  await expect(pendingCommits(front.page)).toHaveText("All changes on the relay", SYNC);
  for (const device of [ward, lab]) {
    await expect(device.page.getByTestId("patient-count")).toHaveText("2 patients", SYNC);
    await openPatient(device.page, NAME);
  }
  for (const device of [front, ward, lab]) expect(await readAllIndexedDb(device.page)).toContain(NOTE);

  // A bundle file made before the erase: it holds the patient.
  await backToList(front.page);
  const [download] = await Promise.all([
    front.page.waitForEvent("download"),
    front.page.getByRole("button", { name: "Export for another device" }).click(),
  ]);
  const oldBundle = testInfo.outputPath("before-erase.shoal");
  await download.saveAs(oldBundle);

  // The lab laptop is switched off.
  await lab.page.close();

  // Only an admin sees the button.
  await openPatient(ward.page, NAME);
  await expect(ward.page.getByRole("button", { name: "Erase patient (GDPR)" })).toHaveCount(0);
  await openPatient(front.page, NAME);
  await front.page.getByRole("button", { name: "Erase patient (GDPR)" }).click();
  await front.page.getByRole("button", { name: "Erase for good" }).click();
  await expect(front.page.getByRole("heading", { name: "Patient erased (GDPR)" })).toBeVisible();
  await expect(front.page.getByTestId("erasure-receipts")).toHaveText(/Erased on [12] of 3 devices/, SYNC);
  // The ward applies it on its own: the page it had open says so.
  await expect(ward.page.getByRole("heading", { name: "Patient erased (GDPR)" })).toBeVisible(SYNC);
  await expect(front.page.getByTestId("erasure-receipts")).toHaveText("Erased on 2 of 3 devices", SYNC);
  await front.screenshot(testInfo, "erased-2-of-3");

  // The laptop comes back: it drops the patient and signs its receipt.
  const labPage = await lab.newTab();
  await labPage.goto(`${relay.url}/`);
  await expect(labPage.getByTestId("patient-count")).toHaveText("1 patient", SYNC);
  await expect(patientList(labPage)).not.toContainText(NAME);
  await expect(front.page.getByTestId("erasure-receipts")).toHaveText("Erased on 3 of 3 devices", SYNC);
  await expect(ward.page.getByTestId("erasure-receipts")).toHaveText("Erased on 3 of 3 devices", SYNC);
  await front.screenshot(testInfo, "erased-3-of-3");
  await expect(pendingCommits(labPage)).toHaveText("All changes on the relay", SYNC);

  // Nothing of the patient in any device's IndexedDB, nor in any file of the relay (WAL included).
  for (const page of [front.page, ward.page, labPage]) await expectNoCanary(page);
  const files = filesOf(relay.dataDir);
  expect(files.length).toBeGreaterThan(0);
  for (const f of files) {
    expect(f.text.includes(NAME), f.path).toBe(false);
    expect(f.text.includes(NOTE), f.path).toBe(false);
  }

  // The old bundle file brings nothing of it back, on any device.
  for (const page of [front.page, ward.page, labPage]) {
    await backToList(page);
    await page.getByTestId("bundle-file").setInputFiles(oldBundle);
    await expect(page.getByTestId("bundle-message")).toBeVisible();
    await expect(page.getByTestId("patient-count")).toHaveText("1 patient");
    await expect(patientList(page)).toContainText("Keeper Patient");
    await expect(patientList(page)).not.toContainText(NAME);
    await expectNoCanary(page);
  }

  expectNoPageErrors(front, ward, lab);
  await Promise.all([front.close(), ward.close(), lab.close()]);
});
