// Sync by file: the relay is stopped, so the only way from one device to the other is a file exported
// through the demo's "Export for another device" and opened with its "Import".
import { DemoDevice, RELAY_CUT_NOISE, expectNoPageErrors } from "./support/demo-device.ts";
import {
  addPatient,
  createClinic,
  joinWithLink,
  patientList,
  readInvitationLink,
  syncState,
} from "./support/demo-flows.ts";
import { expect, test } from "./support/demo-test.ts";

test("patients reach a device with no connection through an exported file, and importing it again changes nothing", async ({
  browser,
  relay,
}, testInfo) => {
  const front = await DemoDevice.open(browser, "front");
  const field = await DemoDevice.open(browser, "field");
  await createClinic(front.page, relay.url, "Front desk", "Field Clinic");
  await joinWithLink(field.page, await readInvitationLink(front.page), "Field laptop", "Field Clinic");

  // No relay from here on. Chromium logs each refused reconnection as an error the page cannot prevent.
  for (const device of [front, field]) device.allowConsoleErrors(RELAY_CUT_NOISE);
  await relay.stop();
  for (const device of [front, field]) await expect(syncState(device.page)).toHaveText(/^Offline/);

  const names = ["Ada Lovelace", "Grace Hopper"];
  for (const name of names) {
    await addPatient(front.page, { name, ward: "General medicine" });
    await front.page.getByRole("link", { name: "← All patients" }).click();
  }
  await expect(front.page.getByTestId("patient-count")).toHaveText("2 patients");
  await expect(field.page.getByTestId("patient-count")).toHaveText("No patients yet.");

  // Export through the button; the browser's download is the file that travels.
  const [download] = await Promise.all([
    front.page.waitForEvent("download"),
    front.page.getByRole("button", { name: "Export for another device" }).click(),
  ]);
  expect(download.suggestedFilename()).toMatch(/^field-clinic-\d{4}-\d{2}-\d{2}\.shoal$/);
  const file = testInfo.outputPath(download.suggestedFilename());
  await download.saveAs(file);
  await front.screenshot(testInfo, "front-desk-exported");

  // Import on the other device: the patients appear although it never reconnected.
  await field.page.getByTestId("bundle-file").setInputFiles(file);
  await expect(field.page.getByTestId("bundle-message")).toHaveText(/^Imported [1-9]\d* changes?\.$/);
  await expect(field.page.getByTestId("patient-count")).toHaveText("2 patients");
  for (const name of names) await expect(patientList(field.page)).toContainText(name);
  await expect(syncState(field.page)).toHaveText(/^Offline/);
  await field.screenshot(testInfo, "field-laptop-imported");

  // The same file again: nothing new.
  await field.page.getByTestId("bundle-file").setInputFiles(file);
  await expect(field.page.getByTestId("bundle-message")).toHaveText(
    "Already up to date: nothing new in this file.",
  );
  await expect(field.page.getByTestId("patient-count")).toHaveText("2 patients");

  expectNoPageErrors(front, field);
  await Promise.all([front.close(), field.close()]);
});
