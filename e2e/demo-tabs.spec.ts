// Two tabs of one device (two pages of one browser context) share the local replica: live queries carry
// each tab's commits to the other with no relay at all.
import { DemoDevice, RELAY_CUT_NOISE, expectNoPageErrors } from "./support/demo-device.ts";
import {
  addPatient,
  createClinic,
  noteArea,
  openPatient,
  patientList,
  syncState,
} from "./support/demo-flows.ts";
import { expect, test } from "./support/demo-test.ts";

test("two tabs of one device stay in sync without the relay", async ({ browser, relay }, testInfo) => {
  const device = await DemoDevice.open(browser, "desk");
  const first = device.page;
  await createClinic(first, relay.url, "Front desk", "West Clinic");
  const second = await device.newTab();
  await second.goto(`${relay.url}/`);
  // Same device: no first run in the second tab, the same clinic and device name.
  await expect(second.getByTestId("clinic-name")).toHaveText("West Clinic");

  device.allowConsoleErrors(RELAY_CUT_NOISE);
  await relay.stop();
  for (const page of [first, second]) await expect(syncState(page)).toHaveText(/^Offline/);

  await addPatient(first, { name: "Florence Nightingale", ward: "Surgery" });
  await expect(patientList(second)).toContainText("Florence Nightingale");

  await openPatient(second, "Florence Nightingale");
  await noteArea(second).fill("Written in the second tab.");
  await noteArea(second).blur();
  await expect(noteArea(first)).toHaveValue("Written in the second tab.");

  await first.getByLabel("New allergy").fill("iodine contrast");
  await first.getByRole("button", { name: "Add", exact: true }).click();
  await expect(second.getByRole("list", { name: "Allergies" })).toContainText("iodine contrast");
  await device.screenshot(testInfo, "second-tab", second);

  expectNoPageErrors(device);
  await device.close();
});
