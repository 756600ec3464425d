// The sample-clinic loader, in its small size: 500 patients and 2,500 visits in commits of about 100
// records (the same generator and commits as the full 2,000 patients, which only takes four times as
// long: 30 s or more here, all of it waiting), with a progress bar, while the list keeps answering;
// then a reload shows everything still there.
import { DemoDevice, expectNoPageErrors } from "./support/demo-device.ts";
import { createClinic, patientList } from "./support/demo-flows.ts";
import { expect, test } from "./support/demo-test.ts";

test("the seed loads with a visible progress bar while the list stays usable, and a reload keeps everything", async ({
  browser,
  relay,
}, testInfo) => {
  test.setTimeout(150_000);
  const device = await DemoDevice.open(browser, "desk");
  const { page } = device;
  await createClinic(page, relay.url, "Front desk", "Seed Clinic");

  await page.getByRole("button", { name: "a small one (500 patients, 2,500 visits)" }).click();
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
    .poll(async () => Number((await progress.getAttribute("value")) ?? 3_000))
    .toBeGreaterThan(midway);

  await expect(page.getByTestId("seed-result")).toHaveText("Loaded 500 patients and 2,500 visits.", {
    timeout: 120_000,
  });
  await expect(page.getByTestId("patient-count")).toHaveText("Showing 100 of 500 patients");
  await expect(page.getByTestId("visit-count")).toHaveText("2,500");
  await device.screenshot(testInfo, "seeded-list");

  await page.getByRole("button", { name: "Devtools" }).click();
  await expect(page.getByRole("complementary", { name: "Devtools" })).toContainText("Last commits");
  await device.screenshot(testInfo, "devtools");

  await page.reload();
  await expect(page.getByTestId("patient-count")).toHaveText("Showing 100 of 500 patients");
  await expect(page.getByTestId("visit-count")).toHaveText("2,500");
  await expect(page.getByTestId("clinic-name")).toHaveText("Seed Clinic");

  expectNoPageErrors(device);
  await device.close();
});
