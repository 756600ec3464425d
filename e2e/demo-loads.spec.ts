// The demo as a first-time visitor meets it, served by the suite's shared relay (webServer): first run,
// a clinic, a patient, search and filters, with no console errors.
import { expect, test } from "@playwright/test";
import { DemoDevice, expectNoPageErrors } from "./support/demo-device.ts";
import { addPatient, createClinic, patientList } from "./support/demo-flows.ts";

test("the demo page loads without console errors and lists an added patient", async ({
  browser,
  baseURL,
}, testInfo) => {
  const device = await DemoDevice.open(browser, "desk");
  const { page } = device;
  await page.goto(`${baseURL}/`);
  await expect(page.getByRole("heading", { name: "Shoal Clinic" })).toBeVisible();
  await device.screenshot(testInfo, "first-run");

  await createClinic(page, baseURL!, "Front desk", "North Clinic");
  await expect(page.getByTestId("patient-count")).toHaveText("No patients yet.");
  await addPatient(page, { name: "Ada Lovelace", ward: "Cardiology", allergies: "penicillin" });
  await page.getByRole("link", { name: "← All patients" }).click();

  const list = patientList(page);
  await expect(list.getByRole("listitem")).toHaveCount(1);
  await expect(list).toContainText("Ada Lovelace");
  await expect(list).toContainText("Cardiology");
  await expect(list).toContainText("penicillin");

  // Search as you type matches any word of the name by prefix; filters narrow by ward and allergy.
  const search = page.getByRole("searchbox", { name: "Search patients" });
  await search.fill("zed");
  await expect(page.getByTestId("patient-count")).toHaveText("No patients match.");
  await search.fill("love");
  await expect(list).toContainText("Ada Lovelace");
  await search.fill("");
  await page.getByLabel("Ward").selectOption("Surgery");
  await expect(page.getByTestId("patient-count")).toHaveText("No patients match.");
  await page.getByLabel("Ward").selectOption("Cardiology");
  await page.getByLabel("Allergy").selectOption("penicillin");
  await expect(list.getByRole("listitem")).toHaveCount(1);
  await device.screenshot(testInfo, "patient-list");

  expectNoPageErrors(device);
  await device.close();
});
