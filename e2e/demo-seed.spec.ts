// The sample-clinic loader: 2,000 patients and 10,000 visits in commits of about 100 records, with a
// progress bar, while the list keeps answering; then a reload shows everything still there.
import { DemoDevice, expectNoPageErrors } from "./support/demo-device.ts";
import { createClinic, patientList } from "./support/demo-flows.ts";
import { expect, test } from "./support/demo-test.ts";

test("the seed loads with a visible progress bar while the list stays usable, and a reload keeps everything", async ({
  browser,
  relay,
}, testInfo) => {
  test.setTimeout(300_000);
  const device = await DemoDevice.open(browser, "desk");
  const { page } = device;
  await createClinic(page, relay.url, "Front desk", "Seed Clinic");

  await page.getByRole("button", { name: /Load sample clinic/ }).click();
  const progress = page.getByRole("progressbar", { name: "Sample clinic progress" });
  await expect(progress).toBeVisible();
  await expect.poll(async () => Number(await progress.getAttribute("value"))).toBeGreaterThan(0);
  await device.screenshot(testInfo, "seed-progress");

  // While batches land, search and filters answer from what is already loaded.
  const search = page.getByRole("searchbox", { name: "Search patients" });
  await search.fill("mrn-10000");
  await expect(patientList(page)).toContainText("MRN-100000");
  await page.getByLabel("Ward").selectOption("Maternity");
  await expect(page.getByTestId("patient-count")).toHaveText(/patients?$/);
  await page.getByLabel("Ward").selectOption("");
  await search.fill("");
  // Still loading after those interactions: they were served during the load, not after it.
  await expect(progress).toBeVisible();
  const midway = Number(await progress.getAttribute("value"));
  await expect
    .poll(async () => Number((await progress.getAttribute("value")) ?? 12_000))
    .toBeGreaterThan(midway);

  await expect(page.getByTestId("seed-result")).toHaveText("Loaded 2,000 patients and 10,000 visits.", {
    timeout: 240_000,
  });
  await expect(page.getByTestId("patient-count")).toHaveText("Showing 100 of 2,000 patients");
  await expect(page.getByTestId("visit-count")).toHaveText("10,000");
  await device.screenshot(testInfo, "seeded-list");

  await page.getByRole("button", { name: "Devtools" }).click();
  await expect(page.getByRole("complementary", { name: "Devtools" })).toContainText("Last commits");
  await device.screenshot(testInfo, "devtools");

  await page.reload();
  await expect(page.getByTestId("patient-count")).toHaveText("Showing 100 of 2,000 patients");
  await expect(page.getByTestId("visit-count")).toHaveText("10,000");
  await expect(page.getByTestId("clinic-name")).toHaveText("Seed Clinic");

  expectNoPageErrors(device);
  await device.close();
});
